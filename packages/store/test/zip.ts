// Zip files for tests (deflated or stored entries, entries whose headers lie): the fuzz suite's builder.
export { makeZip, type ZipEntry } from '../../fuzz/src/zip.js';
