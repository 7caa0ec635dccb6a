/** The package version, written into every output for provenance. Kept in step with package.json by a test. */
export const VERSION = '0.1.0';
