-- The press (a button's callback query) that asked for a redemption code: a press handled
-- again after a kill finds the code it issued instead of issuing, and holding points for,
-- a second one.
ALTER TABLE redemption_codes ADD COLUMN press TEXT;
CREATE UNIQUE INDEX redemption_codes_press ON redemption_codes (press);
