"""Time of the first torch.compile step (dynamic shapes, bf16 autocast) of a 2-layer toy BERT,
then of the next steps at new lengths (issue 11: is compiling worth it on a ~300 s CPU job?).

    python benchmarks/compile_first_step.py
"""
import time, torch
from transformers import BertConfig, BertForSequenceClassification
torch.set_num_threads(1)
cfg = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, attn_implementation="sdpa")
m = BertForSequenceClassification(cfg).train()
m.compile(dynamic=True)
opt = torch.optim.AdamW(m.parameters(), fused=True)
for L in (7, 13, 21, 9):
    t = time.perf_counter()
    ids = torch.randint(0, 1000, (8, L)); mask = torch.ones_like(ids)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    out.logits.float().sum().backward(); opt.step(); opt.zero_grad()
    print(L, time.perf_counter() - t, flush=True)
print(list(m.state_dict())[:2])
