// LocalTuner on 50 rows of the demo data, then generation, from the installed package.
import { Dataset } from "tunekit";
import { addonPath, demoFiles, LocalTuner } from "tunekit/local";

const demo = demoFiles();
const all = await Dataset.load(demo.trainingData);
const dataset = Dataset.from(all.examples.slice(0, 50));
const job = await new LocalTuner().tune({
  baseModel: demo.model,
  dataset,
  hyperparameters: { epochCount: 2, batchSize: 8, learningRate: 1e-3 },
  local: { outputDir: process.argv[2] },
});
const model = await job.wait();
const text = await model.generate("41");
console.log(
  JSON.stringify({
    state: job.state(),
    completedSteps: job.progress().completedSteps,
    firstLoss: job.progress().snapshots[0]?.meanLoss,
    lastLoss: job.progress().snapshots.at(-1)?.meanLoss,
    text,
    adapter: model.name,
    addon: addonPath(),
    demoModel: demo.model,
  }),
);
