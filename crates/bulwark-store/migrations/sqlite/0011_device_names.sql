-- Device names (issue 19): unique, a name by the rule of groups and tags
-- (1-64 of a-z 0-9 . _ -). Existing devices get their hostname in lower
-- case when it fits (at most 55 characters, room for a suffix), else
-- `device-` and the first 8 characters of the id; the second and later
-- devices of one name (by enrollment) get `-2`, `-3`, …, and any name
-- still taken after that the first 8 characters of their id.
ALTER TABLE devices ADD COLUMN name TEXT;
UPDATE devices SET name = CASE
    WHEN hostname IS NOT NULL AND length(hostname) BETWEEN 1 AND 55
        AND lower(hostname) GLOB '[a-z0-9]*'
        AND lower(hostname) NOT GLOB '*[^a-z0-9._-]*'
    THEN lower(hostname)
    ELSE 'device-' || substr(id, 1, 8)
END;
UPDATE devices SET name = ranked.name || '-' || ranked.n
FROM (
    SELECT id, name, ROW_NUMBER() OVER (PARTITION BY name ORDER BY enrolled_at, id) AS n
    FROM devices
) AS ranked
WHERE devices.id = ranked.id AND ranked.n > 1;
UPDATE devices SET name = name || '-' || substr(id, 1, 8)
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY name ORDER BY enrolled_at, id) AS n
        FROM devices
    ) AS ranked
    WHERE n > 1
);
CREATE UNIQUE INDEX devices_name ON devices (name);
