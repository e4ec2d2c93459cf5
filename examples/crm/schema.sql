-- The example CRM: its tables and a few rows. crm.db is built from this
-- file (python3 -c "import sqlite3; sqlite3.connect('crm.db').executescript(open('schema.sql').read())",
-- or sqlite3 crm.db < schema.sql).
--
-- updated_at changes on every write (the CRM's own code sets it; Tandem
-- writes the current time) and is how Tandem finds what changed since its
-- last run; a row whose deleted_at is set is deleted. Both are indexed.

CREATE TABLE contacts (
    id         TEXT PRIMARY KEY,
    first_name TEXT,
    last_name  TEXT,
    email      TEXT,
    phone      TEXT,
    company    TEXT,
    job_title  TEXT,
    tags       TEXT,     -- comma-separated: active-candidate, alumni, …
    owner      TEXT,     -- the recruiter who owns the contact
    updated_at DATETIME NOT NULL,
    deleted_at DATETIME
);
CREATE INDEX contacts_updated_at ON contacts (updated_at);

CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    title      TEXT,
    starts_at  DATETIME,
    ends_at    DATETIME,
    location   TEXT,
    notes      TEXT,
    updated_at DATETIME NOT NULL,
    deleted_at DATETIME
);
CREATE INDEX events_updated_at ON events (updated_at);

INSERT INTO contacts VALUES
    ('crm-1', 'Ada', 'Lovelace', 'ada@example.org', '+1 202 555 0143',
     'Analytical Engines', 'Engineer', 'active-candidate', 'maria',
     '2026-11-20 09:00:00.000', NULL),
    ('crm-2', 'Alan', 'Turing', 'alan@example.org', '+1 202 555 0199',
     'Bletchley Park', 'Cryptanalyst', 'active-candidate, remote', 'li',
     '2026-11-20 09:05:00.000', NULL),
    ('crm-3', 'Grace', 'Hopper', 'grace@example.org', '+1 202 555 0110',
     'US Navy', 'Rear Admiral', 'alumni', 'maria',
     '2026-11-20 09:10:00.000', NULL),
    ('crm-4', 'Katherine', 'Johnson', 'katherine@example.org', '+1 757 555 0123',
     'NASA', 'Mathematician', 'active-candidate', 'sam',
     '2026-11-20 09:15:00.000', NULL),
    ('crm-5', 'Charles', 'Babbage', 'charles@example.org', NULL,
     'Analytical Engines', 'Founder', 'active-candidate', 'li',
     '2026-11-20 09:20:00.000', '2026-11-21 10:00:00.000');

INSERT INTO events VALUES
    ('ev-1', 'Intro call: Ada Lovelace', '2026-12-01 09:00:00Z', '2026-12-01 09:30:00Z',
     'Phone', 'Ask about notice period', '2026-11-20 09:30:00.000', NULL),
    ('ev-2', 'Panel interview: Alan Turing', '2026-12-02 14:00:00Z', '2026-12-02 15:30:00Z',
     'Room 4', NULL, '2026-11-20 09:35:00.000', NULL);
