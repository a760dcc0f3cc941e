#!/bin/bash
# temporary: one device call, three pretraining configs, pick one, LoRA-check it
export PYTHONUNBUFFERED=1
L=$OUT/all.log
{ nproc; python3 -c "import torch,transformers,tokenizers,peft;print(torch.__version__,transformers.__version__,tokenizers.__version__,peft.__version__,torch.cuda.is_available())"; } > $L 2>&1
P=scripts/demo-model/pretrain.py
timeout 380 python3 $P --out /tmp/A --threads 4 --steps 2500 > /tmp/A.log 2>&1 &
timeout 380 python3 $P --out /tmp/B --threads 4 --steps 2500 --batch 32 > /tmp/B.log 2>&1 &
timeout 380 python3 $P --out /tmp/C --threads 2 --device cuda --steps 6000 --batch 32 > /tmp/C.log 2>&1 &
wait
for x in A B C; do echo "=== $x"; grep -v "Loading\|Writing" /tmp/$x.log | tail -40; done >> $L
python3 - >> $L 2>&1 <<'PY'
import json, os, shutil
acc = {}
for x in "ABC":
    try: acc[x] = json.load(open(f"/tmp/{x}/pretraining.json"))["counting_accuracy"]
    except Exception as e: print(x, "no result", e)
mean = {x: sum(a.values()) / len(a) for x, a in acc.items()}
print("mean accuracy", mean)
pick = next((x for x in "AB" if mean.get(x, 0) >= 0.9), max(mean, key=mean.get))
print("pick", pick)
os.makedirs(os.environ["OUT"] + "/best")
for f in os.listdir(f"/tmp/{pick}"): shutil.copy(f"/tmp/{pick}/{f}", os.environ["OUT"] + "/best/" + f)
open("/tmp/pick", "w").write(pick)
PY
pick=$(cat /tmp/pick)
timeout 150 python3 scripts/demo-model/lora_check.py /tmp/$pick 1e-4 3 > /tmp/l1.log 2>&1 &
timeout 150 python3 scripts/demo-model/lora_check.py /tmp/$pick 1e-3 3 > /tmp/l2.log 2>&1 &
wait
for x in l1 l2; do echo "=== lora $x"; grep -v "Loading\|Writing" /tmp/$x.log | tail -8; done >> $L
ls -la $OUT/best >> $L
