-- Case numbers: per organism and year, from 1, without gaps or duplicates. The counter row is
-- bumped in the same transaction that inserts the case, so a failed insert takes its number
-- back. Keep the same meaning as ../sqlite/20261128000007_case_numbers.sql.
ALTER TABLE cases ADD COLUMN year BIGINT;
ALTER TABLE cases ADD COLUMN number BIGINT;
CREATE UNIQUE INDEX cases_number ON cases (COALESCE(organism_id, ''), year, number);

CREATE TABLE case_counters (
    -- The organism's id, or '' for cases without one.
    organism_key  TEXT NOT NULL,
    year          BIGINT NOT NULL,
    last_number   BIGINT NOT NULL CHECK (last_number > 0),
    PRIMARY KEY (organism_key, year)
);
