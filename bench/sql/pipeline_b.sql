-- Pipeline B by hand: the floor. {data} and {out} are filled in by the benchmark.
SET TimeZone = 'UTC';
SET preserve_insertion_order = false;

COPY (
    WITH snap AS (
        SELECT * FROM read_parquet('{data}/product_snapshots.parquet')
    ), changed AS (
        -- a new version starts when a tracked column changes or the product reappears
        SELECT *,
               CASE WHEN lag(price) OVER w IS NOT DISTINCT FROM price
                     AND lag(name) OVER w IS NOT DISTINCT FROM name
                     AND lag(category) OVER w IS NOT DISTINCT FROM category
                     AND lag(snapshot_date) OVER w = snapshot_date - 1
                    THEN 0 ELSE 1 END AS is_new
        FROM snap
        WINDOW w AS (PARTITION BY product_id ORDER BY snapshot_date)
    ), marked AS (
        SELECT *, sum(is_new) OVER (PARTITION BY product_id ORDER BY snapshot_date) AS version
        FROM changed
    ), runs AS (
        SELECT product_id, version, any_value(name) AS name, any_value(category) AS category,
               any_value(price) AS price, min(snapshot_date) AS valid_from,
               max(snapshot_date) AS last_seen
        FROM marked GROUP BY product_id, version
    ), versions AS (
        SELECT product_id, category, price, valid_from,
               coalesce(lead(valid_from) OVER (PARTITION BY product_id ORDER BY valid_from),
                        CASE WHEN last_seen < (SELECT max(snapshot_date) FROM snap)
                             THEN last_seen + 1 END) AS valid_to
        FROM runs
    )
    SELECT o.order_id, o.user_id, o.product_id, o.ordered_at, o.quantity, o.amount,
           v.category, v.price AS unit_price, round(o.quantity * v.price, 2) AS list_value
    FROM read_parquet('{data}/orders.parquet') o
    LEFT JOIN versions v
      ON o.product_id = v.product_id AND o.ordered_at >= v.valid_from
     AND (v.valid_to IS NULL OR o.ordered_at < v.valid_to)
) TO '{out}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
