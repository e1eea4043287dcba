-- Links at rest (#14): a queued mail keeps its personal link only sealed under the link key,
-- which is not in the database (outbox.secret holds the seal, body and ics a placeholder), and
-- forgets it once sent, cancelled or failed. Mail queued before this change kept the link in
-- clear (in body, in ics, and in secret while pending): it is withdrawn here. A pending mail
-- with a link fails with a note (the clerk schedules the meeting again for a new link). Keep
-- the same meaning as ../sqlite/20261205000060_links_at_rest.sql.

-- A link in an .ics may be split by line folding, where REPLACE cannot find it: the calendar
-- attachment of every mail that carried a link goes.
UPDATE outbox SET ics = NULL, ics_method = NULL
WHERE ics IS NOT NULL
  AND (secret IS NOT NULL
       OR body LIKE '%[link personale inviato]%'
       OR body LIKE '%[link personale annullato]%');

UPDATE outbox
SET state = 'failed',
    last_error = 'Link personale ritirato con l''aggiornamento di Accordo: occorre fissare di nuovo l''incontro.',
    lease_until = NULL
WHERE secret IS NOT NULL AND state = 'pending';

UPDATE outbox
SET body = REPLACE(body, secret, '[link personale non consegnato]'), secret = NULL
WHERE secret IS NOT NULL;
