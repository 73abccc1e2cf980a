-- Where the frame was taken: a drone's detections carry its position, so place-based rules
-- (`near`, `inside`, cross-source `near_m`) work for moving sources and replay as they ran.
ALTER TABLE detections ADD COLUMN IF NOT EXISTS lat double precision;
ALTER TABLE detections ADD COLUMN IF NOT EXISTS lon double precision;
