-- The people registry shared by every module: natural and legal persons of an organism.
-- Keep the same meaning as ../postgres/20261128000006_people.sql.
CREATE TABLE people (
    id                     TEXT PRIMARY KEY,
    organism_id            TEXT REFERENCES organisms (id),
    kind                   TEXT NOT NULL CHECK (kind IN ('natural', 'legal')),
    given_name             TEXT,
    family_name            TEXT,
    company_name           TEXT,
    -- As typed (uppercase), and with omocodia undone: duplicates are found on the latter.
    fiscal_code            TEXT,
    fiscal_code_canonical  TEXT,
    vat_number             TEXT,
    -- YYYY-MM-DD
    birth_date             TEXT,
    email                  TEXT,
    pec                    TEXT,
    phone                  TEXT,
    address                TEXT,
    created_at             INTEGER NOT NULL,
    CHECK ((kind = 'natural' AND given_name IS NOT NULL AND family_name IS NOT NULL)
        OR (kind = 'legal' AND company_name IS NOT NULL))
);
CREATE INDEX people_fiscal_code ON people (fiscal_code_canonical);
CREATE INDEX people_vat_number ON people (vat_number);
CREATE INDEX people_names ON people (family_name, given_name);
