-- When a mail may have reached SES: set just before each SendEmail, cleared when SES
-- definitely refused it (throttled, 5xx, rejected). A claim taken over while it is set
-- means the previous holder died between SES and recording the mail: SES may have it, and
-- the new holder sends it again "in doubt" (SES SendEmail has no idempotency key to ask).
alter table deliveries
  add column sending_since timestamptz,
  add column resent_in_doubt boolean not null default false;
