-- Runs once, when the compose database volume is first initialised: the
-- image ships the PGMQ extension but does not enable it in any database.
CREATE EXTENSION IF NOT EXISTS pgmq;
