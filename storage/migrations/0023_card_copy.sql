-- Whether the card in the chat was sent as a possible second copy (an earlier send's fate
-- unknown): its mark must stay when the card is edited to show a decision or a change.
ALTER TABLE reports ADD COLUMN card_copy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN card_copy INTEGER NOT NULL DEFAULT 0;
