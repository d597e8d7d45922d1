-- Pipeline A by hand: the floor. {data} and {out} are filled in by the benchmark.
SET TimeZone = 'UTC';
SET preserve_insertion_order = false;

CREATE TEMP TABLE result AS
WITH deduped AS (
    SELECT user_id, ts
    FROM read_parquet('{data}/clicks.parquet')
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingested_at) = 1
), flagged AS (
    SELECT user_id, ts,
           CASE WHEN ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts) <= INTERVAL 30 MINUTE
                THEN 0 ELSE 1 END AS new_session
    FROM deduped
), sessions AS (
    SELECT user_id, ts,
           sum(new_session) OVER (PARTITION BY user_id ORDER BY ts
                                  RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_no
    FROM flagged
), daily AS (
    SELECT s.user_id, u.country, CAST(s.ts AS DATE) AS day, count(*) AS events,
           count(DISTINCT s.session_no) AS sessions
    FROM sessions s LEFT JOIN read_parquet('{data}/users.parquet') u USING (user_id)
    GROUP BY ALL
)
SELECT user_id, country, day, events, sessions,
       sum(events) OVER w AS events_7d, sum(sessions) OVER w AS sessions_7d
FROM daily
WINDOW w AS (PARTITION BY user_id ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW);

-- The same checks as the expect step: the script fails if any row breaks one.
SELECT CASE WHEN count(*) > 0 THEN error('check failed: ' || count(*) || ' rows') END
FROM result
WHERE user_id IS NULL OR day IS NULL OR events < 1 OR NOT (events_7d >= events);
SELECT CASE WHEN count(*) > 0 THEN error('check failed: unique(user_id, day)') END
FROM (SELECT user_id, day FROM result GROUP BY ALL HAVING count(*) > 1);

COPY result TO '{out}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
