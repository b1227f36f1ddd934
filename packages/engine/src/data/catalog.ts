/**
 * What each known dataset is: its four files, where to look for them, and their checksums.
 *
 * Two SHA-256 sums per file: of the published .gz archive, and of the IDX bytes inside it. The
 * second identifies the data whatever the compression, so files that were gunzipped or recompressed
 * (Debian's dataset-fashion-mnist package recompresses them) are still recognised.
 */
import { FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES } from './dataset.js';

export type DatasetName = 'fashion-mnist' | 'mnist';
export type DatasetFileRole = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';

export const DATASET_NAMES: readonly DatasetName[] = ['fashion-mnist', 'mnist'];
export const FILE_ROLES: readonly DatasetFileRole[] = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];

/** File names without the optional `.gz`. */
export const DATASET_FILE_NAMES: Readonly<Record<DatasetFileRole, string>> = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

/** The canonical Fashion-MNIST mirror (the one Keras downloads from). */
export const FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

export interface KnownFile {
  archiveSha256: string;
  archiveBytes: number;
  contentSha256: string;
  contentBytes: number;
}

export interface DatasetInfo {
  name: DatasetName;
  title: string;
  envVar: string;
  /** Searched relative to the working directory. */
  localDir: string;
  classNames: readonly string[];
  files: Readonly<Record<DatasetFileRole, KnownFile>>;
}

export const DATASETS: Readonly<Record<DatasetName, DatasetInfo>> = {
  'fashion-mnist': {
    name: 'fashion-mnist',
    title: 'Fashion-MNIST',
    envVar: 'FASHION_MNIST_DIR',
    localDir: 'data/fashion-mnist',
    classNames: FASHION_MNIST_CLASS_NAMES,
    files: {
      trainImages: {
        archiveSha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
        archiveBytes: 26421880,
        contentSha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
        contentBytes: 47040016,
      },
      trainLabels: {
        archiveSha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
        archiveBytes: 29515,
        contentSha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
        contentBytes: 60008,
      },
      testImages: {
        archiveSha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
        archiveBytes: 4422102,
        contentSha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
        contentBytes: 7840016,
      },
      testLabels: {
        archiveSha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
        archiveBytes: 5148,
        contentSha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
        contentBytes: 10008,
      },
    },
  },
  mnist: {
    name: 'mnist',
    title: 'MNIST',
    envVar: 'MNIST_DIR',
    localDir: 'data/mnist',
    classNames: MNIST_CLASS_NAMES,
    files: {
      trainImages: {
        archiveSha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
        archiveBytes: 9912422,
        contentSha256: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
        contentBytes: 47040016,
      },
      trainLabels: {
        archiveSha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
        archiveBytes: 28881,
        contentSha256: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
        contentBytes: 60008,
      },
      testImages: {
        archiveSha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
        archiveBytes: 1648877,
        contentSha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
        contentBytes: 7840016,
      },
      testLabels: {
        archiveSha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
        archiveBytes: 4542,
        contentSha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
        contentBytes: 10008,
      },
    },
  },
};
