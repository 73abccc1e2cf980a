-- Evidence and tracking results on detections: the snapshot JPEG's path and line crossings.
ALTER TABLE detections ADD COLUMN IF NOT EXISTS snapshot text;
ALTER TABLE detections ADD COLUMN IF NOT EXISTS crossings jsonb;
