import { SendEmailCommand, SESv2Client } from "@aws-sdk/client-sesv2";
import { inSpan, SpanKind } from "../platform/tracing.js";
import type { Mail } from "./templates.js";

/** Why a SendEmail call failed, as far as retrying is concerned. */
export type SendFailure =
  /** 429 / TooManyRequestsException: slow down and try again. */
  | "throttled"
  /** 5xx: SES had a problem; try again. */
  | "server_error"
  /** No HTTP answer (refused, reset, timed out): try again. SES may have accepted it, see NotifyService. */
  | "network"
  /** Any other 4xx (MessageRejected, BadRequestException, SendingPausedException, …): sending again will not help. */
  | "rejected";

/** A SendEmail call that failed; `transient` says whether another attempt may succeed. */
export class MailSendError extends Error {
  override name = "MailSendError";
  constructor(
    message: string,
    readonly failure: SendFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get transient(): boolean {
    return this.failure !== "rejected";
  }
}

/** Sends one mail to one address; resolves with the provider's message id. */
export interface Mailer {
  send(to: string, mail: Mail): Promise<string>;
  close(): void;
}

export interface SesMailerOptions {
  endpoint: string;
  region: string;
  from: string;
  timeoutMs: number;
  /** Sign with the SDK's default credential chain; otherwise with dummy credentials for the stand-in. */
  credentialsFromEnvironment: boolean;
}

/** SES v2 SendEmail (Simple content: subject, HTML and text, UTF-8, and the List-Unsubscribe headers). */
export class SesMailer implements Mailer {
  private readonly client: SESv2Client;

  constructor(private readonly options: SesMailerOptions) {
    if (!options.from.includes("@")) throw new Error(`SES_FROM ${JSON.stringify(options.from)} has no e-mail address`);
    this.client = new SESv2Client({
      endpoint: options.endpoint,
      region: options.region,
      // NotifyService retries itself: each attempt renews its claim and marks it sending, is counted, and is logged.
      maxAttempts: 1,
      requestHandler: { requestTimeout: options.timeoutMs, connectionTimeout: Math.min(options.timeoutMs, 5_000) },
      ...(options.credentialsFromEnvironment
        ? {}
        : { credentials: { accessKeyId: "taskboard-local", secretAccessKey: "taskboard-local" } }),
    });
  }

  async send(to: string, mail: Mail): Promise<string> {
    const command = new SendEmailCommand({
      FromEmailAddress: this.options.from,
      Destination: { ToAddresses: [to] },
      Content: {
        Simple: {
          Subject: { Data: mail.subject, Charset: "UTF-8" },
          Body: { Html: { Data: mail.html, Charset: "UTF-8" }, Text: { Data: mail.text, Charset: "UTF-8" } },
          // RFC 8058 one-click unsubscribe, which mail providers expect of senders.
          Headers: [
            { Name: "List-Unsubscribe", Value: `<${mail.unsubscribeUrl}>` },
            { Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click" },
          ],
        },
      },
    });
    return inSpan("SESv2/SendEmail", SpanKind.CLIENT, { "rpc.system": "aws-api", "rpc.service": "SESv2", "rpc.method": "SendEmail" }, async () => {
      try {
        const output = await this.client.send(command);
        return output.MessageId ?? "(no message id)";
      } catch (error) {
        throw classify(error);
      }
    });
  }

  close(): void {
    this.client.destroy();
  }
}

/** Sorts an SDK failure into throttled / server error / network (retry) or rejected (give up). */
export function classify(error: unknown): MailSendError {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  const what = `${e?.name ?? "Error"}${status ? ` (HTTP ${status})` : ""}: ${e?.message ?? String(error)}`;
  if (status === undefined) return new MailSendError(`SES unreachable: ${what}`, "network", { cause: error });
  if (status === 429 || e.name === "TooManyRequestsException" || e.name === "ThrottlingException") {
    return new MailSendError(`SES throttled: ${what}`, "throttled", { cause: error });
  }
  if (status >= 500) return new MailSendError(`SES failed: ${what}`, "server_error", { cause: error });
  return new MailSendError(`SES rejected the mail: ${what}`, "rejected", { cause: error });
}
