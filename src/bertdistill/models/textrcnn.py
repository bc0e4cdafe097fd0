"""BERT + TextRCNN: a sequence classifier whose head is a recurrent CNN over BERT's tokens.

The token states of the encoder's second-to-last layer go into a bidirectional LSTM; its
outputs are concatenated with those states, passed through a linear map and tanh (Lai et
al.'s "latent semantic" layer), max-pooled over the real tokens (padding excluded) and
classified. Regression tasks (one label) use MSE, classification cross-entropy.

The classes are registered with the Auto classes under the model type ``bert_textrcnn``
when this module is imported (``import bertdistill`` does), so a saved checkpoint reloads
with ``AutoModelForSequenceClassification.from_pretrained(dir)`` wherever this code is
importable; no ``trust_remote_code`` is needed or used. It evaluates and serves as a
teacher like any other classifier (``logits``, ``hidden_states``, ``attentions``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (AutoConfig, AutoModelForSequenceClassification, BertConfig, BertModel,
                          BertPreTrainedModel)
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "bert_textrcnn"


class BertTextRCNNConfig(BertConfig):
    """BertConfig plus the head's sizes: ``rnn_hidden_size`` (per direction; default half
    the hidden size) and ``rcnn_size`` (the tanh layer; default the hidden size)."""

    model_type = MODEL_TYPE

    def __init__(self, rnn_hidden_size: int | None = None, rcnn_size: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.rnn_hidden_size = int(rnn_hidden_size or max(1, self.hidden_size // 2))
        self.rcnn_size = int(rcnn_size or self.hidden_size)


class BertTextRCNNForSequenceClassification(BertPreTrainedModel):
    """BERT encoder → second-to-last layer tokens → BiLSTM → [LSTM; tokens] → tanh(W·) →
    max-pool over real tokens → dropout → classifier."""

    config_class = BertTextRCNNConfig
    base_model_prefix = "bert"

    def __init__(self, config: BertTextRCNNConfig) -> None:
        super().__init__(config)
        if config.num_hidden_layers < 2:
            raise ValueError("a TextRCNN head reads the second-to-last layer: the encoder needs "
                             f">= 2 layers, got {config.num_hidden_layers}")
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.lstm = nn.LSTM(config.hidden_size, config.rnn_hidden_size, batch_first=True,
                            bidirectional=True)
        self.rcnn = nn.Linear(config.hidden_size + 2 * config.rnn_hidden_size, config.rcnn_size)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.rcnn_size, config.num_labels)
        self.post_init()

    def pooled(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The head up to the classifier: [B, L, H] token states -> [B, rcnn_size]."""
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(tokens, lengths, batch_first=True,
                                                   enforce_sorted=False)
        rnn, _ = self.lstm(packed)
        rnn, _ = nn.utils.rnn.pad_packed_sequence(rnn, batch_first=True, total_length=tokens.shape[1])
        mixed = torch.tanh(self.rcnn(torch.cat([rnn, tokens], dim=-1)))
        mixed = mixed.masked_fill(~mask.bool().unsqueeze(-1), torch.finfo(mixed.dtype).min)
        return mixed.max(dim=1).values

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs) -> SequenceClassifierOutput:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=True, **kwargs)
        tokens = out.hidden_states[-2]
        if attention_mask is None:
            attention_mask = torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)
        logits = self.classifier(self.dropout(self.pooled(tokens, attention_mask)))
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(
            loss=loss, logits=logits,
            hidden_states=out.hidden_states if output_hidden_states else None,
            attentions=out.attentions if output_attentions else None)


AutoConfig.register(MODEL_TYPE, BertTextRCNNConfig, exist_ok=True)
AutoModelForSequenceClassification.register(BertTextRCNNConfig, BertTextRCNNForSequenceClassification,
                                            exist_ok=True)


def textrcnn_from_encoder(name: str, task, **sizes) -> BertTextRCNNForSequenceClassification:
    """A TextRCNN classifier for ``task`` whose encoder is loaded from the BERT checkpoint
    ``name`` (a folder, hub id or alias); the LSTM, tanh layer and classifier are new."""
    from .loading import quiet_transformers, resolve_model

    if task.kind not in ("classification", "regression"):
        raise ValueError(f"--head textrcnn classifies whole texts; task {task.name!r} is {task.kind}")
    source = resolve_model(name)
    with quiet_transformers():
        base = AutoConfig.from_pretrained(source)
    if base.model_type not in ("bert", MODEL_TYPE):
        raise ValueError(f"--head textrcnn needs a BERT encoder, {name} is a {base.model_type!r} model")
    values = {k: v for k, v in base.to_dict().items() if k not in ("model_type", "architectures")}
    id2label = task.id2label
    config = BertTextRCNNConfig(**{**values, **sizes, "num_labels": task.num_labels, "id2label": id2label,
                                   "label2id": {v: k for k, v in id2label.items()},
                                   "problem_type": "regression" if task.kind == "regression"
                                   else "single_label_classification"})
    with quiet_transformers():
        return BertTextRCNNForSequenceClassification.from_pretrained(source, config=config)
