/** The engine's version, written into every saved model as `generatedBy: "descent <version>"`. Kept equal to package.json by a test. */
export const DESCENT_VERSION = '0.1.0';
