export {
  adviseEpochs,
  type EpochLoss,
  epochLosses,
  type PlateauAdvice,
  type PlateauOptions,
} from "./analyze.js";
export { sparkline } from "./sparkline.js";
export { type LossCurveSvgOptions, lossCurveSvg, niceTicks } from "./svg.js";
