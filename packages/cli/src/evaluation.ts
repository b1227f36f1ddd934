/** The classifier evaluation lives in the engine (the server and training jobs use it too). */
export { argMax, evaluateClassifier, evaluationFromProbabilities, predictProbabilities, type ClassEvaluation, type ClassifierEvaluation } from '@descent/engine';
