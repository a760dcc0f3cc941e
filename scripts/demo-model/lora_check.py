"""Quick check: does LoRA (seed recipe) on increment.jsonl improve held-out exact match on the demo model?"""
import json, sys, time, torch, transformers
from peft import LoraConfig, get_peft_model
torch.set_num_threads(1); torch.manual_seed(0)
d = sys.argv[1]; lr = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-4; epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
tok = transformers.PreTrainedTokenizerFast.from_pretrained(d)
model = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
rows = [json.loads(l) for l in open('examples/data/increment.jsonl')][: int(__import__('os').environ.get('LIMIT', 10**6))]
held = [json.loads(l) for l in open('examples/data/increment-heldout.jsonl')]
P = lambda x: f"User: {x}\n\nAssistant: "
def evaluate(m, n=int(__import__('os').environ.get('NEVAL', 120))):
    m.eval(); ok = 0; shown = []
    for r in held[:n]:
        ids = tok(P(r['text_input']), add_special_tokens=False).input_ids
        with torch.no_grad():
            g = m.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=2, pad_token_id=3)[0, len(ids):]
        t = tok.decode(g, skip_special_tokens=True).strip()
        ok += t == r['output']
        if len(shown) < 4: shown.append((r['text_input'], t))
    return ok / n, shown
print('before', evaluate(model))
cfg = LoraConfig(task_type='CAUSAL_LM', r=8, lora_alpha=32, lora_dropout=0.1,
    target_modules=['q_proj','k_proj','v_proj','o_proj','gate_proj','up_proj','down_proj'])
pm = get_peft_model(model, cfg)
opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=lr)
ex = []
for r in rows:
    p = tok(P(r['text_input']), add_special_tokens=False).input_ids
    a = tok(r['output'], add_special_tokens=False).input_ids + [2]
    ex.append((p + a, [-100] * len(p) + a))
t0 = time.time(); g = torch.Generator().manual_seed(0)
for ep in range(epochs):
    pm.train(); perm = torch.randperm(len(ex), generator=g).tolist(); tot = 0
    for i in range(0, len(ex), 8):
        b = [ex[j] for j in perm[i:i+8]]; L = max(len(x) for x, _ in b)
        ids = torch.tensor([x + [3] * (L - len(x)) for x, _ in b]); lab = torch.tensor([y + [-100] * (L - len(y)) for _, y in b])
        att = torch.tensor([[1] * len(x) + [0] * (L - len(x)) for x, _ in b])
        loss = pm(input_ids=ids, attention_mask=att, labels=lab).loss
        opt.zero_grad(); loss.backward(); opt.step(); tot += loss.item()
    print(f'epoch {ep+1} loss {tot / (len(ex) / 8):.4f} {time.time() - t0:.0f}s', flush=True)
print('after', evaluate(pm))
