-- A merged person stays, pointing at the record that continues it: history is kept, and
-- duplicates are no longer proposed. Keep the same meaning as ../postgres/20261128000010_people_merge.sql.
ALTER TABLE people ADD COLUMN merged_into TEXT REFERENCES people (id);
ALTER TABLE people ADD COLUMN merged_at INTEGER;
