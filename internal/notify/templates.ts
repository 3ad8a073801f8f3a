/**
 * The e-mail templates: subject, HTML and plain text of each notification.
 *
 * HTML is built only with the `html` tag below, which escapes every
 * interpolated value unless it is already markup made by this tag. So user
 * content (titles, comments, names) cannot reach the HTML unescaped, however a
 * template is edited later.
 */

/** Markup built by `html`, safe to embed as is. */
export class Html {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Tagged template for HTML: strings are escaped, Html values and arrays of them are kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? "";
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? "");
  });
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === undefined || value === null || value === false) return "";
  return escapeHtml(String(value));
}

export interface Mail {
  subject: string;
  html: string;
  text: string;
}

/** What every mail knows: who it is for and which workspace it links to. */
export interface MailContext {
  appUrl: string;
  workspaceId: string;
  recipientName: string;
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
    <p style="color: #656d76; font-size: 0.85em">You get this e-mail because you are a member of this workspace. Turn e-mail notifications off in your Taskboard profile.</p>
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
    "You get this e-mail because you are a member of this workspace. Turn e-mail notifications off in your Taskboard profile.",
    "",
  ].join("\n");
  return { subject: subjectLine(`[Taskboard] ${parts.subject}`), html: body.markup, text };
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
