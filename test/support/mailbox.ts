import { inject } from "vitest";
import type { SignedUp } from "./http.js";
import { waitFor } from "./wait.js";

/** A mail as the SES stand-in (aws-ses-v2-local) stores it. */
export interface StoredMail {
  messageId: string;
  from: string;
  destination: { to: string[] };
  subject: string;
  body: { html?: string; text?: string };
  headers?: { name: string; value: string }[];
}

const MAIL_WAIT_MS = 20_000;

/** The stand-in's mailbox, from the moment it is made (earlier mails of the run are not looked at). */
export class Mailbox {
  private readonly since = Math.floor(Date.now() / 1000) - 1;
  private readonly endpoint = inject("servers").sesEndpoint;

  /** Every mail for `address`. */
  async to(address: string): Promise<StoredMail[]> {
    const res = await fetch(`${this.endpoint}/store?since=${this.since}`);
    if (!res.ok) throw new Error(`GET /store: ${res.status}`);
    const store = (await res.json()) as { emails: StoredMail[] };
    return store.emails.filter((mail) => mail.destination.to.includes(address));
  }

  /** The mails to `user` whose subject contains `subjectPart`. */
  async about(user: Pick<SignedUp, "email">, subjectPart: string): Promise<StoredMail[]> {
    return (await this.to(user.email)).filter((mail) => mail.subject.includes(subjectPart));
  }

  /** Waits until `user` has `count` mails whose subject contains `subjectPart`, and returns them. */
  waitFor(user: Pick<SignedUp, "email" | "name">, subjectPart: string, count = 1): Promise<StoredMail[]> {
    return waitFor(
      `${count} mail(s) about "${subjectPart}" to ${user.name}`,
      async () => {
        const mails = await this.about(user, subjectPart);
        return mails.length >= count && mails;
      },
      MAIL_WAIT_MS,
      100,
    );
  }
}

/** A header of a stored mail (names compared case-insensitively). */
export function header(mail: StoredMail, name: string): string | undefined {
  return mail.headers?.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}
