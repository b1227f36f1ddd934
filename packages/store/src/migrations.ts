/**
 * The schema, as an ordered list of migrations. A database records in `schema_migrations` which
 * versions it has; opening a store for writing applies the missing ones in order, and refuses a
 * database whose version is newer than this code knows.
 *
 * To change the schema, append a migration (never edit one that has shipped):
 *
 *   { version: 2, name: 'users and tokens', up: (t) => [
 *       `CREATE TABLE users (id ${t.id}, name ${t.varchar(100)} NOT NULL UNIQUE, created_at ${t.timestamp} NOT NULL)${t.table}`,
 *   ] }
 *
 * `t` (a Dialect) spells the column types that SQLite and MariaDB write differently; everything
 * else is SQL both understand. SQLite runs a migration in one transaction. MariaDB commits each
 * DDL statement on its own, so a migration there should be a list of statements that can each
 * stand alone; the version is recorded once all of them ran.
 */

export interface Dialect {
  kind: 'sqlite' | 'mariadb';
  /** An auto-numbered primary key column. */
  id: string;
  /** A column that references an `id` (same integer type). */
  ref: string;
  int: string;
  double: string;
  varchar(n: number): string;
  /** Free text of any length (not indexable in MariaDB). */
  text: string;
  /** JSON text. */
  json: string;
  /** Bytes, up to 64 KiB (an image's pixels). */
  blob: string;
  /** Bytes of any size (a model's weights). */
  largeBlob: string;
  /** Date and time in UTC, written as 'YYYY-MM-DD HH:MM:SS.mmm'. */
  timestamp: string;
  /** Appended to CREATE TABLE. */
  table: string;
}

export const SQLITE: Dialect = {
  kind: 'sqlite',
  id: 'INTEGER PRIMARY KEY AUTOINCREMENT',
  ref: 'INTEGER',
  int: 'INTEGER',
  double: 'REAL',
  varchar: () => 'TEXT',
  text: 'TEXT',
  json: 'TEXT',
  blob: 'BLOB',
  largeBlob: 'BLOB',
  timestamp: 'TEXT',
  table: '',
};

export const MARIADB: Dialect = {
  kind: 'mariadb',
  id: 'BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY',
  ref: 'BIGINT',
  int: 'INT',
  double: 'DOUBLE',
  varchar: (n) => `VARCHAR(${n})`,
  text: 'MEDIUMTEXT',
  json: 'LONGTEXT',
  blob: 'BLOB',
  largeBlob: 'LONGBLOB',
  timestamp: 'DATETIME(3)',
  table: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
};

export interface Migration {
  version: number;
  name: string;
  up(t: Dialect): string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'datasets, images, models, training runs, predictions',
    up: (t) => [
      `CREATE TABLE datasets (
        id ${t.id},
        name ${t.varchar(100)} NOT NULL UNIQUE,
        height ${t.int} NOT NULL,
        width ${t.int} NOT NULL,
        created_at ${t.timestamp} NOT NULL
      )${t.table}`,
      // One row per class: label is the class index the models output.
      `CREATE TABLE classes (
        dataset_id ${t.ref} NOT NULL,
        label ${t.int} NOT NULL,
        name ${t.varchar(200)} NOT NULL,
        PRIMARY KEY (dataset_id, label),
        UNIQUE (dataset_id, name),
        FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE CASCADE
      )${t.table}`,
      // One row per import: what was read, and a hash of it that makes a repeated import a no-op.
      `CREATE TABLE imports (
        id ${t.id},
        dataset_id ${t.ref} NOT NULL,
        kind ${t.varchar(20)} NOT NULL,
        source ${t.varchar(1000)} NOT NULL,
        content_hash ${t.varchar(64)} NOT NULL,
        images ${t.int} NOT NULL,
        skipped ${t.int} NOT NULL,
        created_at ${t.timestamp} NOT NULL,
        UNIQUE (dataset_id, content_hash),
        FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE CASCADE
      )${t.table}`,
      // position orders a split (the IDX order for imported IDX files), so exports and training
      // read the images back in the order they came in.
      `CREATE TABLE images (
        id ${t.id},
        dataset_id ${t.ref} NOT NULL,
        split ${t.varchar(5)} NOT NULL CHECK (split IN ('train', 'test')),
        position ${t.int} NOT NULL,
        label ${t.int} NOT NULL,
        pixels ${t.blob} NOT NULL,
        source ${t.varchar(1000)} NOT NULL,
        content_hash ${t.varchar(64)} NOT NULL,
        import_id ${t.ref} NOT NULL,
        UNIQUE (dataset_id, split, position),
        FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE CASCADE,
        FOREIGN KEY (import_id) REFERENCES imports (id) ON DELETE CASCADE
      )${t.table}`,
      `CREATE INDEX images_by_hash ON images (dataset_id, content_hash)`,
      `CREATE INDEX images_by_label ON images (dataset_id, split, label)`,
      // A trained model: its tfjs Layers files (model.json, weights.bin, descent-training.json) and
      // where they were saved, the dataset, and its test metrics.
      `CREATE TABLE models (
        id ${t.id},
        name ${t.varchar(200)} NOT NULL UNIQUE,
        dataset_id ${t.ref},
        architecture ${t.text} NOT NULL,
        model_json ${t.json} NOT NULL,
        weights ${t.largeBlob} NOT NULL,
        training_json ${t.json},
        files_hash ${t.varchar(64)} NOT NULL,
        dir ${t.varchar(1000)},
        test_loss ${t.double},
        test_accuracy ${t.double},
        created_at ${t.timestamp} NOT NULL,
        created_by ${t.varchar(200)},
        FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE SET NULL
      )${t.table}`,
      `CREATE INDEX models_by_files ON models (files_hash)`,
      `CREATE TABLE training_runs (
        id ${t.id},
        dataset_id ${t.ref},
        model_id ${t.ref},
        status ${t.varchar(20)} NOT NULL,
        settings ${t.json} NOT NULL,
        history ${t.json} NOT NULL,
        epochs_done ${t.int} NOT NULL,
        message ${t.varchar(1000)},
        started_at ${t.timestamp} NOT NULL,
        finished_at ${t.timestamp},
        created_by ${t.varchar(200)},
        FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE SET NULL,
        FOREIGN KEY (model_id) REFERENCES models (id) ON DELETE SET NULL
      )${t.table}`,
      // One row per classified image: a stored image (image_id) or other bytes (pixels, the 28×28
      // the model saw), the predicted class, its probability, all probabilities (a JSON array),
      // and the true label when known.
      `CREATE TABLE predictions (
        id ${t.id},
        model_id ${t.ref} NOT NULL,
        image_id ${t.ref},
        pixels ${t.blob},
        input ${t.varchar(1000)} NOT NULL,
        predicted ${t.int} NOT NULL,
        confidence ${t.double} NOT NULL,
        probabilities ${t.json} NOT NULL,
        true_label ${t.int},
        origin ${t.varchar(20)} NOT NULL,
        created_at ${t.timestamp} NOT NULL,
        created_by ${t.varchar(200)},
        FOREIGN KEY (model_id) REFERENCES models (id) ON DELETE CASCADE,
        FOREIGN KEY (image_id) REFERENCES images (id) ON DELETE SET NULL
      )${t.table}`,
      `CREATE INDEX predictions_by_model ON predictions (model_id, origin)`,
      `CREATE INDEX predictions_by_image ON predictions (image_id)`,
    ],
  },
  {
    version: 2,
    name: 'users, tokens, training jobs',
    up: (t) => [
      // password_hash: scrypt$N$r$p$salt$key. scope: the highest scope the user may ask for.
      `CREATE TABLE users (
        id ${t.id},
        name ${t.varchar(100)} NOT NULL UNIQUE,
        password_hash ${t.varchar(300)} NOT NULL,
        scope ${t.varchar(10)} NOT NULL,
        created_at ${t.timestamp} NOT NULL
      )${t.table}`,
      // Only a token's SHA-256 is kept. kind: access, refresh or personal; parent_id links an
      // access token to the refresh token issued with it (revoking one revokes both).
      `CREATE TABLE tokens (
        id ${t.id},
        user_id ${t.ref},
        kind ${t.varchar(10)} NOT NULL,
        name ${t.varchar(200)},
        scope ${t.varchar(10)} NOT NULL,
        token_hash ${t.varchar(64)} NOT NULL UNIQUE,
        parent_id ${t.ref},
        created_at ${t.timestamp} NOT NULL,
        expires_at ${t.timestamp} NULL,
        revoked_at ${t.timestamp} NULL,
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
      )${t.table}`,
      `CREATE INDEX tokens_by_parent ON tokens (parent_id)`,
      // A training run the server queued: the job spec it runs, and its last checkpoint (JSON).
      `CREATE TABLE training_jobs (
        run_id ${t.ref} NOT NULL PRIMARY KEY,
        spec ${t.json} NOT NULL,
        checkpoint ${t.json},
        updated_at ${t.timestamp} NOT NULL,
        FOREIGN KEY (run_id) REFERENCES training_runs (id) ON DELETE CASCADE
      )${t.table}`,
    ],
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** The table that records which migrations a database has. */
export function migrationsTable(t: Dialect): string {
  return `CREATE TABLE IF NOT EXISTS schema_migrations (
    version ${t.int} NOT NULL PRIMARY KEY,
    name ${t.varchar(200)} NOT NULL,
    applied_at ${t.timestamp} NOT NULL
  )${t.table}`;
}
