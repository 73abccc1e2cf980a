-- The frame size and source kind of a detection, so history replays rebuild the event exactly.
ALTER TABLE detections ADD COLUMN IF NOT EXISTS frame_width integer;
ALTER TABLE detections ADD COLUMN IF NOT EXISTS frame_height integer;
ALTER TABLE detections ADD COLUMN IF NOT EXISTS kind text;
