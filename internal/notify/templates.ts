/**
 * The e-mail templates: subject, HTML and plain text of each notification.
 *
 * HTML is built only with the `html` tag below, which escapes every
 * interpolated value unless it is already markup made by this tag. So user
 * content (titles, comments, names) cannot reach the HTML unescaped, however a
 * template is edited later.
 */

import { html, type Html } from "../platform/html.js";

export interface Mail {
  subject: string;
  html: string;
  text: string;
  /** One-click unsubscribe (RFC 8058): the mailer puts it in List-Unsubscribe. */
  unsubscribeUrl: string;
}

/** What every mail knows: who it is for, which workspace it links to, and the recipient's unsubscribe link. */
export interface MailContext {
  appUrl: string;
  workspaceId: string;
  recipientName: string;
  unsubscribeUrl: string;
}

/** The one-click unsubscribe address of a recipient's token (served by the gateway). */
export function unsubscribeLink(appUrl: string, token: string): string {
  return `${appUrl}/unsubscribe?token=${encodeURIComponent(token)}`;
}

/** The settings of the web app (e-mail notifications on or off). */
export function settingsLink(appUrl: string): string {
  return `${appUrl}/?settings=1`;
}

const SUBJECT_MAX = 150;
const EXCERPT_MAX = 600;

/** The workspace in the web app. */
export function workspaceLink(appUrl: string, workspaceId: string): string {
  return `${appUrl}/?workspace=${encodeURIComponent(workspaceId)}`;
}

export function taskCreatedMail(
  ctx: MailContext,
  facts: { actorName: string; title: string; description: string },
): Mail {
  return compose(ctx, {
    subject: `New task: ${facts.title}`,
    lead: `${facts.actorName} created a task in your workspace:`,
    leadHtml: html`<strong>${facts.actorName}</strong> created a task in your workspace:`,
    title: facts.title,
    quote: facts.description,
  });
}

export function taskAssignedMail(ctx: MailContext, facts: { actorName: string; title: string; description: string }): Mail {
  return compose(ctx, {
    subject: `Assigned to you: ${facts.title}`,
    lead: `${facts.actorName} assigned a task to you:`,
    leadHtml: html`<strong>${facts.actorName}</strong> assigned a task to you:`,
    title: facts.title,
    quote: facts.description,
  });
}

export function watchedTaskAssignedMail(
  ctx: MailContext,
  facts: { actorName: string; assigneeName: string; title: string; description: string },
): Mail {
  return compose(ctx, {
    subject: `Assigned to ${facts.assigneeName}: ${facts.title}`,
    lead: `${facts.actorName} assigned a task you watch to ${facts.assigneeName}:`,
    leadHtml: html`<strong>${facts.actorName}</strong> assigned a task you watch to <strong>${facts.assigneeName}</strong>:`,
    title: facts.title,
    quote: facts.description,
  });
}

const STATUS_NAMES: Record<string, string> = { pending: "pending", in_progress: "in progress", completed: "completed", cancelled: "cancelled" };

export function statusChangedMail(ctx: MailContext, facts: { actorName: string; title: string; description: string; status: string }): Mail {
  const status = STATUS_NAMES[facts.status] ?? facts.status;
  return compose(ctx, {
    subject: `Now ${status}: ${facts.title}`,
    lead: `${facts.actorName} set a task you watch to ${status}:`,
    leadHtml: html`<strong>${facts.actorName}</strong> set a task you watch to <strong>${status}</strong>:`,
    title: facts.title,
    quote: facts.description,
  });
}

export function dueSoonMail(ctx: MailContext, facts: { title: string; description: string; dueDate: string }): Mail {
  const due = new Date(facts.dueDate).toUTCString();
  return compose(ctx, {
    subject: `Due soon: ${facts.title}`,
    lead: `A task assigned to you is due ${due}:`,
    leadHtml: html`A task assigned to you is due <strong>${due}</strong>:`,
    title: facts.title,
    quote: facts.description,
  });
}

export function commentCreatedMail(
  ctx: MailContext,
  facts: { authorName: string; taskTitle: string; content: string },
): Mail {
  return compose(ctx, {
    subject: `New comment on: ${facts.taskTitle}`,
    lead: `${facts.authorName} commented on a task you follow:`,
    leadHtml: html`<strong>${facts.authorName}</strong> commented on a task you follow:`,
    title: facts.taskTitle,
    quote: facts.content,
  });
}

/** The one layout every notification shares. */
function compose(
  ctx: MailContext,
  parts: { subject: string; lead: string; leadHtml: Html; title: string; quote: string },
): Mail {
  const link = workspaceLink(ctx.appUrl, ctx.workspaceId);
  const quote = excerpt(parts.quote);
  const body = html`<!doctype html>
<html>
  <body style="font-family: system-ui, sans-serif; color: #1f2328; line-height: 1.5">
    <p>Hi ${ctx.recipientName},</p>
    <p>${parts.leadHtml}</p>
    <p style="font-size: 1.1em"><strong>${parts.title}</strong></p>
    ${quote && html`<blockquote style="margin: 0 0 1em; padding-left: 1em; border-left: 3px solid #d0d7de; white-space: pre-wrap">${quote}</blockquote>`}
    <p><a href="${link}">Open the workspace in Taskboard</a></p>
    ${footerHtml(ctx)}
  </body>
</html>
`;
  const text = [
    `Hi ${ctx.recipientName},`,
    "",
    parts.lead,
    "",
    `  ${parts.title}`,
    ...(quote ? ["", ...quote.split("\n").map((line) => `> ${line}`)] : []),
    "",
    `Open the workspace: ${link}`,
    "",
    ...footerText(ctx),
  ].join("\n");
  return { subject: subjectLine(`[Taskboard] ${parts.subject}`), html: body.markup, text, unsubscribeUrl: ctx.unsubscribeUrl };
}

function footerHtml(ctx: { appUrl: string; unsubscribeUrl: string }): Html {
  return html`<p style="color: #656d76; font-size: 0.85em">You get this e-mail because you are a member of this workspace.
      <a href="${ctx.unsubscribeUrl}">Unsubscribe</a> from notifications, or turn them off or on in your <a href="${settingsLink(ctx.appUrl)}">settings</a>.</p>`;
}

function footerText(ctx: { appUrl: string; unsubscribeUrl: string }): string[] {
  return [
    "You get this e-mail because you are a member of this workspace.",
    `Unsubscribe from notifications: ${ctx.unsubscribeUrl}`,
    `Or turn them off or on in your settings: ${settingsLink(ctx.appUrl)}`,
    "",
  ];
}

/** The password-reset mail: sent whatever the recipient's notification setting (they asked for it). */
export function passwordResetMail(ctx: { appUrl: string; recipientName: string; unsubscribeUrl: string }, facts: { token: string; minutes: number }): Mail {
  const link = `${ctx.appUrl}/?reset=${encodeURIComponent(facts.token)}`;
  const body = html`<!doctype html>
<html>
  <body style="font-family: system-ui, sans-serif; color: #1f2328; line-height: 1.5">
    <p>Hi ${ctx.recipientName},</p>
    <p>Someone (we hope you) asked to reset your Taskboard password. This link sets a new one; it works once, for ${facts.minutes} minutes:</p>
    <p><a href="${link}">Choose a new password</a></p>
    <p>If you did not ask for it, ignore this mail: your password stays as it is.</p>
  </body>
</html>
`;
  const text = [
    `Hi ${ctx.recipientName},`,
    "",
    `Someone (we hope you) asked to reset your Taskboard password. This link sets a new one; it works once, for ${facts.minutes} minutes:`,
    "",
    link,
    "",
    "If you did not ask for it, ignore this mail: your password stays as it is.",
    "",
  ].join("\n");
  return { subject: "[Taskboard] Reset your password", html: body.markup, text, unsubscribeUrl: ctx.unsubscribeUrl };
}

/** One line (no CR/LF reaches a header), at most SUBJECT_MAX characters. */
function subjectLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > SUBJECT_MAX ? `${line.slice(0, SUBJECT_MAX - 1)}…` : line;
}

function excerpt(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > EXCERPT_MAX ? `${trimmed.slice(0, EXCERPT_MAX - 1)}…` : trimmed;
}
