-- The log's guarantees, enforced by PostgreSQL itself (design: docs/log.md).
-- Every statement here is idempotent (CREATE OR REPLACE, IF NOT EXISTS): a change to this file
-- ships with a new migration that runs it again.
--
-- flunq_draw_positions  positions drawn together with the transaction's xid, so xid order equals
--                       position order.
-- flunq_horizon         the highest position below which no in-flight transaction holds one.
-- flunq_append          the whole append (stream locks, idempotency, expected version, positions,
--                       rows, stream bookkeeping) in one statement and one round trip. It does not
--                       NOTIFY: that would serialise commits (events/notify.py says why).
-- flunq_append_new      a batch of new events outside a caller's transaction, numbered by the
--                       caller, one array per attribute: the same without the look-up of stored
--                       ids, in fewer steps.
-- flunq_append_one      the same for a single event, in fewer statements (the common case), the
--                       event as a row of parameters rather than JSON.
-- flunq_check_stream    the checks of an append on one stream (tenant, deleted, expected version).
-- flunq_events_guard    refuses UPDATE and DELETE of events (purge is explicit: flunq_purge_stream).
-- flunq_mark_restored_events  after a logical restore into another cluster: the xids of the events.

CREATE SEQUENCE IF NOT EXISTS flunq_position_seq AS bigint MINVALUE 1 START 1 CACHE 1;

-- Returned as a named row type, not through OUT parameters: the caller's row is described by the type
-- cache, where OUT parameters would have it built from the function's catalog entry on every call.
DO $$ BEGIN
    CREATE TYPE flunq_drawn AS (o_xid xid8, o_first bigint, o_time timestamptz);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$ BEGIN
    -- Its result type changed (migration 0014); the callers are PL/pgSQL, resolved at run time.
    IF pg_get_function_result('flunq_draw_positions(integer)'::regprocedure) <> 'flunq_drawn' THEN
        DROP FUNCTION flunq_draw_positions(integer);
    END IF;
EXCEPTION WHEN undefined_function THEN NULL;
END $$;
CREATE OR REPLACE FUNCTION flunq_draw_positions(p_count integer) RETURNS flunq_drawn
LANGUAGE plpgsql AS $$
DECLARE
    o_xid xid8;
    o_first bigint;
    o_time timestamptz;
BEGIN
    -- The xid must be assigned here, under the lock; one assigned earlier could be lower than
    -- the xid of a transaction that draws lower positions after it, breaking the horizon.
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'flunq: positions must be drawn by the first write of a transaction'
            USING ERRCODE = 'FQ001';
    END IF;
    -- A session lock held only for these few statements (not to commit), so appends overlap.
    PERFORM pg_advisory_lock(4242424201);
    BEGIN
        o_xid := pg_current_xact_id();
        o_first := nextval('flunq_position_seq');
        IF p_count > 1 THEN
            PERFORM setval('flunq_position_seq', o_first + p_count - 1);
        END IF;
        -- Read under the lock, so recordedtime never decreases along positions.
        o_time := clock_timestamp();
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- A session lock survives the transaction: never leave it held.
        PERFORM pg_advisory_unlock(4242424201);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(4242424201);
    RETURN ROW(o_xid, o_first, o_time)::flunq_drawn;
END $$;

-- Every transaction with an xid below the snapshot's xmin has ended, and positions follow xids, so
-- no transaction still running can hold a position at or below the highest position written by
-- such a transaction: that is the horizon. Rows whose xid is below xmin come first in position
-- order, so no index on xid is needed (one index entry fewer per event appended; docs/benchmarks.md,
-- finding 17). The newest rows are read first: normally one of the first few is below xmin. When
-- none is (a long transaction holds xmin back while appends go on), a binary search over positions
-- finds the horizon in a few dozen index probes, however many rows were appended since.
CREATE OR REPLACE FUNCTION flunq_horizon() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_xmin xid8 := pg_snapshot_xmin(pg_current_snapshot());
    v_row record;
    v_horizon bigint := 0;  -- the highest row below xmin found so far
    v_low bigint := 0;      -- no row at or below it is higher than that
    v_high bigint;          -- every row at or above it is at or above xmin
    v_mid bigint;
BEGIN
    FOR v_row IN SELECT e."position", e.xid FROM flunq_events e ORDER BY e."position" DESC LIMIT 16 LOOP
        IF v_row.xid < v_xmin THEN
            RETURN v_row."position";
        END IF;
        v_high := v_row."position";
    END LOOP;
    IF v_high IS NULL THEN
        RETURN 0;
    END IF;
    WHILE v_high - v_low > 1 LOOP
        v_mid := v_low + (v_high - v_low) / 2;
        SELECT e."position", e.xid INTO v_row FROM flunq_events e
         WHERE e."position" > v_low AND e."position" <= v_mid ORDER BY e."position" DESC LIMIT 1;
        IF NOT FOUND THEN
            v_low := v_mid;
        ELSIF v_row.xid < v_xmin THEN
            v_horizon := v_row."position";
            v_low := v_mid;
        ELSE
            v_high := v_row."position";
        END IF;
    END LOOP;
    RETURN v_horizon;
END $$;

-- The checks of an append on one stream, under its lock: the stream's tenant, deletion and
-- expected version. Returns the stream's last version (-1: no events) and whether its row exists.
CREATE OR REPLACE FUNCTION flunq_check_stream(p_stream text, p_expected text, p_tenant text,
                                              OUT o_last bigint, OUT o_exists boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_deleted timestamptz;
    v_owner text;
BEGIN
    SELECT s.last_version, s.deleted_at, s.tenant INTO o_last, v_deleted, v_owner
      FROM flunq_streams s WHERE s.name = p_stream;
    o_exists := FOUND;
    -- A tenant writes into its own streams and new ones; the check comes first so that nothing
    -- else of another tenant's stream (deleted, version) is revealed.
    IF p_tenant IS NOT NULL AND v_owner IS DISTINCT FROM p_tenant
       AND (v_owner IS NOT NULL OR coalesce(o_last, -1) >= 0) THEN
        RAISE EXCEPTION 'flunq: stream % belongs to another tenant', p_stream
            USING ERRCODE = 'FQ007', DETAIL = jsonb_build_object('stream', p_stream)::text;
    END IF;
    IF v_deleted IS NOT NULL THEN
        RAISE EXCEPTION 'flunq: stream % is deleted', p_stream
            USING ERRCODE = 'FQ004', DETAIL = jsonb_build_object('stream', p_stream)::text;
    END IF;
    o_last := coalesce(o_last, -1);
    IF (p_expected = 'no_stream' AND o_last <> -1)
       OR (p_expected = 'stream_exists' AND o_last = -1)
       OR (p_expected ~ '^[0-9]+$' AND o_last <> p_expected::bigint) THEN
        RAISE EXCEPTION 'flunq: wrong expected version for stream %', p_stream
            USING ERRCODE = 'FQ002',
                  DETAIL = jsonb_build_object('stream', p_stream, 'expected_version', p_expected,
                                              'actual_version', o_last)::text;
    END IF;
END $$;

-- One event as the append functions take it: the JSON the service sends, parsed once. `data` stays
-- JSON text (the column is `json`: stored as written, read back with no conversion). `hash`, the
-- content hash that releases before migration 0018 sent and stored, is ignored (flunq_same_event).
DO $$ BEGIN
    CREATE TYPE flunq_new_event AS (
        stream text, id text, source text, specversion text, "type" text, subject text,
        "time" timestamptz, datacontenttype text, dataschema text, data json, data_base64 text,
        tenantid text, workflowid text, executionid text, taskid text, correlationid text,
        causationid text, extensions jsonb, hash text);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- Whether the stored event `s` is the new event `e` (the same attributes in the same stream): the
-- test of idempotency, which tells a retry (answered with the stored original) from another event
-- under a used (source, id) (a conflict). Strings compare exactly, `time` as an instant, `data` and
-- `extensions` as JSON values (key order, spacing and the form of a number do not matter: 1, 1.0
-- and 1e0 are one number), `data_base64` by its bytes. It runs only for a (source, id) that is
-- stored already, so appends of new events compute nothing for it; before migration 0018 every
-- append computed and stored a hash of its events' canonical JSON for this (docs/benchmarks.md,
-- finding 22).
CREATE OR REPLACE FUNCTION flunq_same_event(s flunq_events, e flunq_new_event) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT s.stream = e.stream AND s.specversion = e.specversion AND s."type" = e."type"
       AND s.subject IS NOT DISTINCT FROM e.subject AND s."time" IS NOT DISTINCT FROM e."time"
       AND s.datacontenttype IS NOT DISTINCT FROM e.datacontenttype
       AND s.dataschema IS NOT DISTINCT FROM e.dataschema
       AND s.data::jsonb IS NOT DISTINCT FROM e.data::jsonb
       AND s.data_base64 IS NOT DISTINCT FROM decode(e.data_base64, 'base64')
       AND s.tenantid IS NOT DISTINCT FROM e.tenantid
       AND s.workflowid IS NOT DISTINCT FROM e.workflowid
       AND s.executionid IS NOT DISTINCT FROM e.executionid
       AND s.taskid IS NOT DISTINCT FROM e.taskid
       AND s.correlationid IS NOT DISTINCT FROM e.correlationid
       AND s.causationid IS NOT DISTINCT FROM e.causationid
       AND s.extensions = coalesce(e.extensions, '{}')
$$;

-- p_events: a JSON array of events. p_tenant: the tenant a tenant-bound caller writes for (NULL: an
-- unrestricted caller). A stream belongs to the tenant of its first event (or of the tenant-bound
-- caller that created it). p_probe: look for stored (source, id) first, so that a retry gets the
-- stored originals. Without it, a retry fails on the unique index (23505, flunq_events_source_id)
-- or on a check idempotency comes before, and the caller runs the function again with it, as
-- after flunq_append_one. Skipping the look-up saves an index probe per event; outside a
-- transaction of the caller's only (a failed statement would abort it). The service now sends such
-- batches to flunq_append_new; p_probe => false stays for processes of earlier releases while a
-- rolling deploy migrates.
DROP FUNCTION IF EXISTS flunq_append(jsonb, text);
DROP FUNCTION IF EXISTS flunq_append(jsonb, text, text);
DROP FUNCTION IF EXISTS flunq_append(json, text, text);
CREATE OR REPLACE FUNCTION flunq_append(p_events json, p_expected text DEFAULT 'any',
                                        p_tenant text DEFAULT NULL, p_probe boolean DEFAULT true)
RETURNS TABLE(o_position bigint, o_stream text, o_version bigint, o_recordedtime timestamptz,
              o_duplicate boolean)
LANGUAGE plpgsql
-- PL/pgSQL plans a statement that uses its variables for each call's values ("custom plans") as
-- long as it judges that cheaper than one generic plan. For batches of a few events it kept
-- doing so: a third of a 2-event batch's time went to planning. From ~10 events on it chose the
-- generic plan by itself (docs/benchmarks.md, finding 15). The best plan does not depend on the
-- values.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_events flunq_new_event[] := ARRAY(SELECT e FROM json_populate_recordset(NULL::flunq_new_event, p_events) e);
    v_count integer := cardinality(v_events);
    v_stream text;
    v_found integer;
    v_conflicts jsonb;
    v_draw record;
BEGIN
    -- 1. One appender per stream at a time, streams locked in name order (by code point, as
    --    flunq_append_new's caller sorts them) so batches never deadlock. Advisory locks assign
    --    no xid: positions are still drawn by the first write.
    FOR v_stream IN SELECT DISTINCT e.stream COLLATE "C" FROM unnest(v_events) e ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(4242, hashtext(v_stream));
    END LOOP;

    -- 2. Idempotency on (source, id): a retry returns the stored originals (unless p_probe is off).
    --    LATERAL ... LIMIT 1 keeps this an index probe per event: the planner guesses 10 rows for
    --    unnest and would otherwise scan a young table.
    IF p_probe THEN
        SELECT count(*),
               jsonb_agg(jsonb_build_object('source', ev.source, 'id', ev.id, 'stream', ev.stream))
                   FILTER (WHERE NOT ev.same)
          INTO v_found, v_conflicts
          FROM unnest(v_events) e
          CROSS JOIN LATERAL (
              SELECT x.source, x.id, x.stream, flunq_same_event(x, e) AS same FROM flunq_events x
               WHERE x.source = e.source AND x.id = e.id LIMIT 1) ev;
        IF v_found > 0 THEN
            -- Before anything that names the stored event: it may be another tenant's.
            IF p_tenant IS NOT NULL AND EXISTS (
                SELECT 1 FROM unnest(v_events) e
                  JOIN flunq_events ev ON ev.source = e.source AND ev.id = e.id
                 WHERE ev.tenantid IS DISTINCT FROM p_tenant) THEN
                RAISE EXCEPTION 'flunq: source and id are taken by an event of another tenant'
                    USING ERRCODE = 'FQ008';
            END IF;
            IF v_conflicts IS NOT NULL THEN
                RAISE EXCEPTION 'flunq: event id reused with different content'
                    USING ERRCODE = 'FQ003', DETAIL = jsonb_build_object('events', v_conflicts)::text;
            END IF;
            IF v_found < v_count THEN
                RAISE EXCEPTION 'flunq: some events of the batch exist already'
                    USING ERRCODE = 'FQ005',
                          DETAIL = jsonb_build_object('existing', v_found, 'batch', v_count)::text;
            END IF;
            RETURN QUERY
                SELECT ev.position, ev.stream, ev.version, ev.recordedtime, true
                  FROM unnest(v_events) WITH ORDINALITY e
                  JOIN flunq_events ev ON ev.source = e.source AND ev.id = e.id
                 ORDER BY e.ordinality;
            RETURN;
        END IF;
    END IF;

    -- 3. Deleted streams refuse appends; the expected version is checked under the stream lock.
    FOR v_stream IN SELECT DISTINCT e.stream FROM unnest(v_events) e LOOP
        PERFORM flunq_check_stream(v_stream, p_expected, p_tenant);
    END LOOP;

    -- 4. The first write: xid and positions, together.
    v_draw := flunq_draw_positions(v_count);

    -- 5. The rows, then the streams' bookkeeping.
    RETURN QUERY
    WITH numbered AS (
        SELECT e.*, e.ordinality AS ord,
               coalesce(s.last_version, -1)
                   + row_number() OVER (PARTITION BY e.stream ORDER BY e.ordinality) AS "version"
          FROM unnest(v_events) WITH ORDINALITY e
          LEFT JOIN LATERAL (SELECT x.last_version FROM flunq_streams x WHERE x.name = e.stream
                                    LIMIT 1) s ON true
    ), inserted AS (
        INSERT INTO flunq_events AS ev (
            "position", xid, stream, "version", id, source, specversion, "type", subject, "time",
            datacontenttype, dataschema, data, data_base64, tenantid, workflowid, executionid,
            taskid, correlationid, causationid, extensions, recordedtime)
        SELECT v_draw.o_first + n.ord - 1, v_draw.o_xid, n.stream, n."version",
               n.id, n.source, n.specversion, n."type", n.subject, n."time", n.datacontenttype,
               n.dataschema, n.data, decode(n.data_base64, 'base64'), n.tenantid, n.workflowid,
               n.executionid, n.taskid, n.correlationid, n.causationid,
               coalesce(n.extensions, '{}'), v_draw.o_time
          FROM numbered n
        RETURNING ev."position", ev.stream, ev."version", ev.recordedtime, ev.tenantid
    ), bookkeeping AS (
        INSERT INTO flunq_streams AS s (name, category, last_version, last_position, last_event_at,
                                        tenant)
        SELECT i.stream, split_part(i.stream, '-', 1), max(i."version"), max(i."position"),
               v_draw.o_time, (array_agg(i.tenantid ORDER BY i."version"))[1]
          FROM inserted i GROUP BY i.stream
        ON CONFLICT (name) DO UPDATE
           SET last_version = excluded.last_version,
               last_position = excluded.last_position,
               last_event_at = excluded.last_event_at,
               -- a stream created empty without a tenant takes its first event's
               tenant = CASE WHEN s.last_version < 0 THEN coalesce(s.tenant, excluded.tenant)
                             ELSE s.tenant END
    )
    SELECT i."position", i.stream, i."version", i.recordedtime, false
      FROM inserted i ORDER BY i."position";
END $$;

-- A batch of new events outside a transaction of the caller's, the common case of a batch: what
-- flunq_append does without its look-up of stored (source, id), in fewer steps, because the caller
-- numbers the events and sends each attribute as one array (in binary: PostgreSQL reads each
-- element by its length, where JSON has to be scanned character by character). Element i of every
-- array is the batch's event i. p_stream: the 1-based index of each event's stream in p_streams;
-- p_rank: its 0-based rank among that stream's events in the batch. p_streams lists the batch's
-- streams in name order by code point (the lock order), each with its number of events (`events`),
-- the index of its last event in the batch (`last`) and its first event's `tenantid`. So the rows
-- go in straight from the arrays: no window function for versions, no probe of `flunq_streams` per
-- event, no `RETURNING`; one row comes back, from which the caller computes each event's position
-- (o_first + its index), version (o_last[stream] + 1 + rank) and recorded time (docs/benchmarks.md,
-- finding 21). A retry of a stored (source, id) fails here, on the unique index or on a check that
-- idempotency comes before, and the caller runs flunq_append, which answers it, as after
-- flunq_append_one.
DO $$ BEGIN
    CREATE TYPE flunq_batch_appended AS (o_first bigint, o_time timestamptz, o_last bigint[]);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
CREATE OR REPLACE FUNCTION flunq_append_new(
    p_streams json, p_expected text, p_tenant text, p_stream integer[], p_rank integer[],
    p_id text[], p_source text[], p_specversion text[], p_type text[], p_subject text[],
    p_time text[], p_datacontenttype text[], p_dataschema text[], p_data json[],
    p_data_base64 text[], p_tenantid text[], p_workflowid text[], p_executionid text[],
    p_taskid text[], p_correlationid text[], p_causationid text[], p_extensions text[],
    p_hash bytea[] DEFAULT NULL)  -- sent by releases before migration 0018; ignored
RETURNS flunq_batch_appended
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan  -- as flunq_append: one plan for every batch size
AS $$
DECLARE
    v_out flunq_batch_appended;
    v_draw flunq_drawn;
    v_names text[];
    v_counts integer[];
    v_lasts integer[];
    v_tenants text[];
    v_i integer;
BEGIN
    -- In the caller's order, which its numbers refer to: sorted by code point, as flunq_append's
    -- locks (COLLATE "C"; the database's collation may order names otherwise).
    SELECT array_agg(s.name ORDER BY s.i), array_agg(s.events ORDER BY s.i),
           array_agg(s.last ORDER BY s.i), array_agg(s.tenantid ORDER BY s.i)
      INTO v_names, v_counts, v_lasts, v_tenants
      FROM ROWS FROM (json_to_recordset(p_streams) AS (name text, events integer, last integer,
                                                       tenantid text))
           WITH ORDINALITY AS s(name, events, last, tenantid, i);

    -- 1. The streams' locks, in name order; 2. their checks, which give each its last version.
    FOR v_i IN 1 .. cardinality(v_names) LOOP
        PERFORM pg_advisory_xact_lock(4242, hashtext(v_names[v_i]));
    END LOOP;
    v_out.o_last := '{}';
    FOR v_i IN 1 .. cardinality(v_names) LOOP
        v_out.o_last[v_i] := (flunq_check_stream(v_names[v_i], p_expected, p_tenant)).o_last;
    END LOOP;

    -- 3. The first write: xid and positions, together.
    v_draw := flunq_draw_positions(cardinality(p_id));
    v_out.o_first := v_draw.o_first;
    v_out.o_time := v_draw.o_time;

    -- 4. The rows, then the streams' bookkeeping.
    INSERT INTO flunq_events (
        "position", xid, stream, "version", id, source, specversion, "type", subject, "time",
        datacontenttype, dataschema, data, data_base64, tenantid, workflowid, executionid,
        taskid, correlationid, causationid, extensions, recordedtime)
    SELECT v_draw.o_first + e.ord - 1, v_draw.o_xid, v_names[e.stream],
           v_out.o_last[e.stream] + 1 + e.rank, e.id, e.source, e.specversion, e."type",
           e.subject, e."time"::timestamptz, e.datacontenttype, e.dataschema, e.data,
           decode(e.data_base64, 'base64'), e.tenantid, e.workflowid, e.executionid, e.taskid,
           e.correlationid, e.causationid, coalesce(e.extensions::jsonb, '{}'), v_draw.o_time
      FROM unnest(p_stream, p_rank, p_id, p_source, p_specversion, p_type, p_subject, p_time,
                  p_datacontenttype, p_dataschema, p_data, p_data_base64, p_tenantid,
                  p_workflowid, p_executionid, p_taskid, p_correlationid, p_causationid,
                  p_extensions)
           WITH ORDINALITY AS e(stream, rank, id, source, specversion, "type", subject, "time",
                                datacontenttype, dataschema, data, data_base64, tenantid,
                                workflowid, executionid, taskid, correlationid, causationid,
                                extensions, ord);
    INSERT INTO flunq_streams AS s (name, category, last_version, last_position, last_event_at, tenant)
    SELECT u.name, split_part(u.name, '-', 1), v_out.o_last[u.i] + u.events,
           v_draw.o_first + u.last, v_draw.o_time, u.tenantid
      FROM unnest(v_names, v_counts, v_lasts, v_tenants) WITH ORDINALITY
           AS u(name, events, last, tenantid, i)
    ON CONFLICT (name) DO UPDATE
       SET last_version = excluded.last_version,
           last_position = excluded.last_position,
           last_event_at = excluded.last_event_at,
           -- a stream created empty without a tenant takes its first event's
           tenant = CASE WHEN s.last_version < 0 THEN coalesce(s.tenant, excluded.tenant)
                         ELSE s.tenant END;
    RETURN v_out;
END $$;

-- The same append for one event, with the statements a single event needs and no more: no
-- array of events, no window function, no idempotency probe. A retry of a stored (source, id)
-- fails here on the unique index (23505, flunq_events_source_id); the caller then runs
-- flunq_append, which answers the retry (or the conflict) with every check of the batch path.
-- Outside a transaction of the caller's only (a failed statement would abort it).
--
-- Every query of a PL/pgSQL function starts an executor of its own, and this function runs on every
-- append, so it runs as few as it can: one UPDATE of the stream's row returns its new version (no
-- read before it), and the draw is an expression, not a query (docs/benchmarks.md, finding 18).
-- The event comes as a row, each attribute a parameter of the caller's statement
-- (`ROW($1, ..., $19)::flunq_new_event`): no JSON to parse, which was a tenth of the function's
-- work (finding 19). `data` is still JSON text, validated as the column's type.
DO $$ BEGIN
    CREATE TYPE flunq_appended AS (o_position bigint, o_stream text, o_version bigint,
                                   o_recordedtime timestamptz, o_duplicate boolean);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
-- Earlier versions took the event as JSON (migration 0016 changed it).
DROP FUNCTION IF EXISTS flunq_append_one(jsonb, text, text);
CREATE OR REPLACE FUNCTION flunq_append_one(p_event flunq_new_event, p_expected text DEFAULT 'any',
                                            p_tenant text DEFAULT NULL)
RETURNS flunq_appended
LANGUAGE plpgsql AS $$
DECLARE
    v_out flunq_appended;
    v_draw flunq_drawn;
BEGIN
    v_out.o_stream := p_event.stream;
    v_out.o_duplicate := false;
    PERFORM pg_advisory_xact_lock(4242, hashtext(v_out.o_stream));

    -- The checks that need the stream's row before anything is written: a tenant-bound caller,
    -- an expected version other than `any`. A deleted stream is found by the update below.
    IF p_tenant IS NOT NULL OR p_expected <> 'any' THEN
        PERFORM flunq_check_stream(v_out.o_stream, p_expected, p_tenant);
    END IF;

    -- The first write: xid and position together.
    v_draw := flunq_draw_positions(1);
    v_out.o_position := v_draw.o_first;
    v_out.o_recordedtime := v_draw.o_time;

    UPDATE flunq_streams
       SET last_version = last_version + 1, last_position = v_draw.o_first,
           last_event_at = v_draw.o_time,
           tenant = CASE WHEN last_version < 0 THEN coalesce(tenant, p_event.tenantid) ELSE tenant END
     WHERE name = v_out.o_stream AND deleted_at IS NULL
    RETURNING last_version INTO v_out.o_version;
    IF NOT FOUND THEN
        -- A new stream, or a deleted one: the checks say which (and refuse the deleted one).
        PERFORM flunq_check_stream(v_out.o_stream, p_expected, p_tenant);
        v_out.o_version := 0;
        INSERT INTO flunq_streams (name, category, last_version, last_position, last_event_at, tenant)
        VALUES (v_out.o_stream, split_part(v_out.o_stream, '-', 1), 0, v_draw.o_first,
                v_draw.o_time, p_event.tenantid);
    END IF;

    INSERT INTO flunq_events (
        "position", xid, stream, "version", id, source, specversion, "type", subject, "time",
        datacontenttype, dataschema, data, data_base64, tenantid, workflowid, executionid,
        taskid, correlationid, causationid, extensions, recordedtime)
    VALUES (v_draw.o_first, v_draw.o_xid, v_out.o_stream, v_out.o_version, p_event.id,
            p_event.source, p_event.specversion, p_event."type", p_event.subject, p_event."time",
            p_event.datacontenttype, p_event.dataschema, p_event.data,
            decode(p_event.data_base64, 'base64'), p_event.tenantid, p_event.workflowid,
            p_event.executionid, p_event.taskid, p_event.correlationid, p_event.causationid,
            coalesce(p_event.extensions, '{}'), v_draw.o_time);
    RETURN v_out;
END $$;

-- The JSON form of the release before migration 0016, for its processes still running while a
-- rolling deploy migrates (the service no longer calls it): the same function, the event parsed.
CREATE OR REPLACE FUNCTION flunq_append_one(p_event json, p_expected text DEFAULT 'any',
                                            p_tenant text DEFAULT NULL)
RETURNS flunq_appended
LANGUAGE sql AS $$
    SELECT flunq_append_one(json_populate_record(NULL::flunq_new_event, p_event), p_expected, p_tenant)
$$;

CREATE OR REPLACE FUNCTION flunq_events_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_same flunq_events;
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('flunq.purging', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND current_setting('flunq.restoring', true) = 'on' THEN
        v_same := NEW;
        v_same.xid := OLD.xid;
        IF v_same::text = OLD::text THEN  -- the xid and nothing else (json has no "=")
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'flunq: events are append-only; % refused', TG_OP USING ERRCODE = 'FQ000';
END $$;

DROP TRIGGER IF EXISTS flunq_events_append_only ON flunq_events;
CREATE TRIGGER flunq_events_append_only BEFORE UPDATE OR DELETE ON flunq_events
    FOR EACH ROW EXECUTE FUNCTION flunq_events_guard();

-- Physical removal of a soft-deleted stream's events: the one explicit way rows leave the log.
CREATE OR REPLACE FUNCTION flunq_purge_stream(p_stream text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM flunq_streams WHERE name = p_stream AND deleted_at IS NOT NULL) THEN
        RAISE EXCEPTION 'flunq: only a deleted stream can be purged' USING ERRCODE = 'FQ006';
    END IF;
    PERFORM set_config('flunq.purging', 'on', true);
    DELETE FROM flunq_events WHERE stream = p_stream;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM set_config('flunq.purging', 'off', true);
    RETURN v_count;
END $$;

-- After a logical restore (pg_dump, then pg_restore or psql) into another cluster, the events keep
-- the xids of the cluster that wrote them. Those at or above this cluster's next xid look like
-- transactions still running: the horizon stays below them until an append commits after them,
-- and while a long transaction holds xmin back its search can stop below them (readers wait; they
-- never skip). Run once after such a restore (`manage.py mark_restored_events`): it gives those
-- events xid 1, older than any transaction here, so the horizon counts them.
-- Only those: an event of this cluster's own is below the snapshot's xmax. Giving one of them
-- xid 1 could put the horizon above a position an older transaction still holds. The restored
-- events' positions are below every position drawn here since (the dump restores the sequence),
-- so positions still follow xids. Restored xids below xmax need nothing: the horizon counts them
-- once the transactions running now have ended. Returns how many events it marked.
CREATE OR REPLACE FUNCTION flunq_mark_restored_events() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    PERFORM set_config('flunq.restoring', 'on', true);
    UPDATE flunq_events SET xid = '1' WHERE xid >= pg_snapshot_xmax(pg_current_snapshot());
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM set_config('flunq.restoring', 'off', true);
    RETURN v_count;
END $$;
