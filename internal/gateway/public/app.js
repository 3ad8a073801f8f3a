// The test page's script (GET /app.js), an ES module: the page (index.html) has no inline
// script, so its Content-Security-Policy allows scripts of this origin only. REST calls and
// the workspace room go through the client SDK (api/client, compiled, served at /sdk/).
import { TaskboardClient, TaskboardError, RealtimeClosedError, RealtimeFrameError } from '/sdk/index.js';

// ---------- small helpers (user content only ever goes through textContent / text nodes) ----------
const $ = (id) => document.getElementById(id);
const PROPS = new Set(['value', 'disabled', 'selected', 'hidden', 'title', 'type', 'placeholder', 'checked']);
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'data') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (PROPS.has(key)) node[key] = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
const short = (id) => (typeof id === 'string' ? id.slice(0, 8) : '?');
const clip = (text, n) => { const s = String(text); return s.length > n ? s.slice(0, n - 1) + '…' : s; };
const timeOf = (value) => { const d = new Date(value); return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString(); };
const STATUSES = ['pending', 'in_progress', 'completed', 'cancelled'];
const PRIORITIES = ['low', 'medium', 'high', 'urgent'];
const SESSION_KEY = 'taskboard.session';
/** Per workspace: `{seq, epoch}` of the last event seen, so a reload resumes where the tab was. */
const POSITION_PREFIX = 'taskboard.position.';

// ---------- state ----------
const S = {
  client: null,          // the session's TaskboardClient (null when logged out): REST calls, token refresh, the room
  tokens: null,          // { access_token, refresh_token } as the client holds them (kept in sessionStorage)
  me: null,              // { id, name, role, email }
  workspaces: [],
  ws: null,              // the picked workspace
  members: new Map(),    // user_id -> member
  groups: [],            // the workspace's groups the user may see (owners and admins: all)
  names: new Map(),      // user_id -> name, kept after a member leaves (for the event log)
  exports: new Map(),    // export job id -> { job, view, lastEventAt }
  tasks: new Map(),      // task id -> task
  taskViews: new Map(),  // task id -> view (DOM parts)
  deletedTasks: new Set(),
  taskLoad: 0,           // generation of task loads (a newer load wins)
  lostAccess: null,      // why the picked workspace is out of reach (removed, deleted), once the server said so
  sessionExpired: false, // the last session ended on a refused refresh (until the next login)
};

// ---------- errors ----------
function describe(error) {
  if (error instanceof TaskboardError) {
    let text = `${error.message} (${error.code}${error.status ? `, HTTP ${error.status}` : ''})`;
    if (error.retryAfter) text += ` – retry after ${error.retryAfter} s`;
    return text;
  }
  return error && error.message ? error.message : String(error);
}
let errorTimer = null;
let errorIsNetwork = false;
function showError(error, context) {
  // After a refused refresh ended the session (and said so), the calls it failed add nothing.
  if (!S.client && S.sessionExpired && error instanceof TaskboardError && error.status === 401) return;
  errorIsNetwork = error instanceof TaskboardError && error.status === 0;
  $('error-text').textContent = (context ? context + ': ' : '') + describe(error);
  $('error').hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(hideError, 20000);
}
function hideError() { $('error').hidden = true; $('error-text').textContent = ''; }
$('error-close').addEventListener('click', hideError);

/** Runs an action of a button: disabled meanwhile, errors shown. Resolves to the action's result or undefined. */
async function run(button, context, action) {
  if (button) button.disabled = true;
  try { return await action(); }
  catch (error) { showError(error, context); return undefined; }
  finally { if (button) button.disabled = false; }
}

// ---------- REST (the SDK: one typed method per operation; tokens refreshed before expiry and after a 401) ----------
/** The session's client; a call without one (logged out meanwhile) fails like the API would. */
function api() {
  if (!S.client) throw new TaskboardError('not logged in', { status: 401, code: 'unauthorized' });
  return S.client;
}

/** Every item of a paginated list (`{items, next_cursor}`), following cursors: `page(query)` is one SDK list call. */
async function listAll(page, maxPages = 50) {
  const items = [];
  let cursor;
  for (let n = 0; n < maxPages; n++) {
    const data = await page({ limit: 200, cursor });
    items.push(...(Array.isArray(data && data.items) ? data.items : []));
    cursor = data && data.next_cursor;
    if (!cursor) break;
  }
  return items;
}

/** A completed export's file (GET /exports/:id/download with the bearer token: a link could not carry it): `{blob, filename}`. */
async function apiDownload(jobId, fallbackName) {
  // client.request answers the Response, whose content-disposition names the file.
  const response = await api().request('GET', `/exports/${encodeURIComponent(jobId)}/download`, { headers: { accept: '*/*' } });
  const disposition = response.headers.get('content-disposition') || '';
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  let filename = fallbackName;
  if (match) { try { filename = decodeURIComponent(match[1]); } catch { filename = match[1]; } }
  return { blob: await response.blob(), filename };
}

// ---------- session and tokens ----------
function decodeJwt(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part + '='.repeat((4 - (part.length % 4)) % 4)), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch { return {}; }
}

let refreshTimer = null;
let refreshCount = 0;

/**
 * The session's client: `tokens` from an earlier page load (or none before a login), every
 * new pair saved for a reload of the tab, and a refused refresh (undefined) ending the session.
 */
function createClient(tokens, email) {
  const client = new TaskboardClient({
    baseUrl: '',
    tokens: tokens || undefined,
    onTokens: (pair) => {
      if (S.client !== client) return; // a client of an ended session
      if (pair) { setTokens(pair, email); return; }
      endSession('Your session has ended (the refresh token was refused); please log in again.');
      S.sessionExpired = true;
    },
  });
  return client;
}

/** Takes a token pair (login, refresh, or restored): who the user is, the stored session, the next refresh. */
function setTokens(pair, email) {
  // Every pair after the first of a session is a refresh.
  refreshCount = S.tokens ? refreshCount + 1 : 0;
  const claims = decodeJwt(pair.access_token);
  S.tokens = { access_token: pair.access_token, refresh_token: pair.refresh_token };
  S.me = { id: claims.sub, name: claims.name || '', role: claims.role || 'user', email: email || (S.me && S.me.email) || '' };
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    const workspaceId = S.ws ? S.ws.id : (saved && saved.workspace_id) || null;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ tokens: S.tokens, email: S.me.email, workspace_id: workspaceId }));
  } catch { /* storage may be off */ }
  scheduleRefresh();
  renderWho();
  // An open room socket gets the fresh token from the SDK's subscription itself (an auth frame before expiry).
}

function saveWorkspaceChoice() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (saved) { saved.workspace_id = S.ws ? S.ws.id : null; sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved)); }
  } catch { /* ignore */ }
}

/**
 * Keeps an idle session's access token fresh: when it is due (the SDK's own schedule), asks
 * the client for it, which refreshes; calls and the room refresh on their own as well, and
 * share one exchange with this.
 */
function scheduleRefresh(delayMs) {
  clearTimeout(refreshTimer);
  const client = S.client;
  if (!client) return;
  const due = delayMs !== undefined ? delayMs : client.accessTokenRefreshIn();
  if (due === undefined) return;
  refreshTimer = setTimeout(() => {
    if (S.client !== client) return;
    client.accessToken().then(
      () => { if (S.client === client) scheduleRefresh(); },
      (error) => {
        if (S.client !== client) return; // refused: the session ended
        showError(error, 'Refreshing the access token');
        scheduleRefresh(5000);
      },
    );
  }, Math.max(1000, due));
}

function renderWho() {
  const who = $('who');
  const token = $('token-state');
  if (!S.me) { who.hidden = true; token.hidden = true; $('logout').hidden = true; return; }
  who.textContent = `${S.me.name || 'user'}${S.me.email ? ' <' + S.me.email + '>' : ''}${S.me.role === 'admin' ? ' · system admin' : ''}`;
  who.hidden = false;
  const exp = S.tokens ? decodeJwt(S.tokens.access_token).exp : undefined;
  token.textContent = typeof exp === 'number' ? 'token valid until ' + timeOf(exp * 1000) : '';
  token.dataset.refreshes = String(refreshCount);
  token.hidden = !S.tokens;
  $('logout').hidden = false;
}

/** The workspace a link asked for (`/?workspace=<id>`, as in notification e-mails). */
const linkedWorkspace = new URLSearchParams(location.search).get('workspace');
// A mail's links: a password reset, and the settings (e-mail notifications).
const resetToken = new URLSearchParams(location.search).get('reset');
const openSettings = new URLSearchParams(location.search).has('settings');

/** Shows the app; `wanted` is the workspace to open (linked, or reopened after a page reload). */
async function startSession(wanted = linkedWorkspace) {
  $('auth').hidden = true;
  $('app').hidden = false;
  renderWho();
  // Who the user is, as the server knows them now (name, e-mail and role may have changed).
  const client = S.client;
  const me = await client.getMe();
  if (S.client !== client) return;
  S.me = { id: me.id, name: me.name, role: me.role, email: me.email };
  renderWho();
  $('email-notifications').checked = me.email_notifications;
  if (openSettings) $('settings').scrollIntoView();
  await loadWorkspaces();
  if (wanted && S.workspaces.some((w) => w.id === wanted)) await pickWorkspace(wanted);
}

function endSession(message) {
  disconnect('logged out');
  clearTimeout(refreshTimer);
  S.client = null; // its late answers and token changes are ignored from here
  S.tokens = null; S.me = null; S.ws = null; S.workspaces = [];
  S.names.clear();
  try {
    sessionStorage.removeItem(SESSION_KEY);
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(POSITION_PREFIX)) sessionStorage.removeItem(key);
  } catch { /* ignore */ }
  resetWorkspaceView();
  renderWorkspaces();
  renderWho();
  $('app').hidden = true;
  $('auth').hidden = false;
  $('auth-password').value = '';
  if (message) showError(new Error(message));
}

/** Logs in with a client of its own, which becomes the session's once the tokens are in. */
async function logIn(email, password, register) {
  const client = createClient(null, email);
  S.client = client;
  S.sessionExpired = false;
  try {
    if (register) await client.register(register);
    await client.login({ email, password }); // onTokens → setTokens
  } catch (error) {
    if (S.client === client) S.client = null;
    throw error;
  }
  hideError();
  await startSession();
}

$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('login'), 'Log in', async () => {
    const email = $('auth-email').value.trim();
    const password = $('auth-password').value;
    if (!email || !password) throw new Error('enter your e-mail and password');
    await logIn(email, password);
  });
});

$('register').addEventListener('click', () => {
  void run($('register'), 'Register', async () => {
    const name = $('auth-name').value.trim();
    const email = $('auth-email').value.trim();
    const password = $('auth-password').value;
    if (!name || !email || !password) throw new Error('enter a name, an e-mail and a password to register');
    await logIn(email, password, { name, email, password });
  });
});

$('forgot').addEventListener('click', () => {
  void run($('forgot'), 'Password reset', async () => {
    const email = $('auth-email').value.trim();
    if (!email) throw new Error('enter your e-mail address first');
    const answer = await new TaskboardClient({ baseUrl: '' }).requestPasswordReset({ email });
    $('auth-info').textContent = answer.message;
  });
});

// Opened from a reset mail (/?reset=<token>): the new-password form instead of the login.
if (resetToken) {
  $('reset').hidden = false;
  $('auth').hidden = true;
}
$('reset-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('reset-save'), 'Password reset', async () => {
    await new TaskboardClient({ baseUrl: '' }).confirmPasswordReset({ token: resetToken, password: $('reset-password').value });
    history.replaceState(null, '', '/');
    $('reset').hidden = true;
    $('auth').hidden = false;
    $('auth-info').textContent = 'Your password is changed; log in with it.';
  });
});

$('email-notifications').addEventListener('change', () => {
  const wanted = $('email-notifications').checked;
  void run($('email-notifications'), 'Settings', async () => {
    const me = await api().updateUser(S.me.id, { email_notifications: wanted });
    $('email-notifications').checked = me.email_notifications;
    $('settings-info').textContent = me.email_notifications ? 'E-mail notifications are on.' : 'E-mail notifications are off.';
  });
});

$('logout').addEventListener('click', () => {
  void run($('logout'), 'Log out', async () => {
    const client = S.client;
    const refresh = S.tokens && S.tokens.refresh_token;
    // The session ends here whatever the server answers; the client's own "tokens gone" is not a refused refresh.
    S.client = null;
    try {
      if (client && refresh) await client.logout({ refresh_token: refresh });
    } finally {
      endSession();
    }
  });
});
// ---------- workspaces ----------
async function loadWorkspaces() {
  S.workspaces = await listAll((query) => api().listWorkspaces(query)).catch((error) => { showError(error, 'Loading workspaces'); return S.workspaces; });
  renderWorkspaces();
}

function renderWorkspaces() {
  const select = $('ws-select');
  const options = [el('option', { value: '' }, '— pick a workspace —')];
  for (const w of S.workspaces) options.push(el('option', { value: w.id }, `${w.name} (${w.role})`));
  if (S.ws && !S.workspaces.some((w) => w.id === S.ws.id)) options.push(el('option', { value: S.ws.id }, `${S.ws.name} (no longer yours)`));
  select.replaceChildren(...options);
  select.value = S.ws ? S.ws.id : '';
  renderWorkspaceInfo();
}

// ---------- what the caller's role allows (API.md "who"): nothing that would answer 403 is offered ----------
const myRole = () => (S.ws ? S.ws.role : null);
const can = {
  manageMembers: () => myRole() === 'owner' || myRole() === 'admin',   // POST members, DELETE others
  changeRoles: () => myRole() === 'owner',                             // PUT members/:user_id
  editWorkspace: () => myRole() === 'owner' || myRole() === 'admin',   // PUT /workspaces/:id
  deleteWorkspace: () => myRole() === 'owner',                         // DELETE /workspaces/:id
  broadcast: () => myRole() === 'owner' || myRole() === 'admin',       // POST broadcast
  manageGroups: () => myRole() === 'owner' || myRole() === 'admin',    // POST/DELETE groups, their members
  manageWebhooks: () => myRole() === 'owner' || myRole() === 'admin',  // the workspace's webhooks
  deleteTask: (task) => myRole() === 'owner' || myRole() === 'admin' || Boolean(task && S.me && task.created_by === S.me.id),
};

function renderWorkspaceInfo() {
  const info = $('ws-info');
  const has = Boolean(S.ws);
  $('ws-connect').disabled = !has;
  $('ws-disconnect').disabled = !has;
  $('message-broadcast').hidden = !(has && can.broadcast());
  $('member-form').hidden = !(has && can.manageMembers());
  $('ws-edit-form').hidden = !(has && can.editWorkspace());
  $('ws-delete').hidden = !(has && can.deleteWorkspace());
  for (const id of ['task-create', 'member-add', 'message-send', 'ping', 'tasks-refresh', 'presence-refresh', 'export-create', 'exports-refresh']) $(id).disabled = !has;
  if (!has) { info.textContent = S.workspaces.length ? 'Pick a workspace to work in.' : 'No workspace yet: create one.'; return; }
  info.textContent = `${S.ws.description ? S.ws.description + ' · ' : ''}you are ${S.ws.role} · id ${S.ws.id}`;
  if (document.activeElement !== $('ws-edit-name') && document.activeElement !== $('ws-edit-description')) {
    $('ws-edit-name').value = S.ws.name || '';
    $('ws-edit-description').value = S.ws.description || '';
  }
}

/** Re-applies the role's permissions everywhere (after the caller's role changed). */
function renderPermissions() {
  renderWorkspaceInfo();
  renderMembers();
}

$('ws-edit-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('ws-edit-save'), 'Saving the workspace', async () => {
    if (!S.ws) throw new Error('pick a workspace first');
    const name = $('ws-edit-name').value.trim();
    if (!name) throw new Error('the workspace needs a name');
    const updated = await api().updateWorkspace(S.ws.id, { name, description: $('ws-edit-description').value.trim() });
    if (S.ws && updated && updated.id === S.ws.id) { S.ws.name = updated.name; S.ws.description = updated.description; renderWorkspaces(); }
  });
});

$('ws-delete').addEventListener('click', () => {
  if (!S.ws || !confirm(`Delete the workspace "${S.ws.name}" with all its tasks?`)) return;
  void run($('ws-delete'), 'Deleting the workspace', async () => {
    const id = S.ws.id;
    disconnect('deleting the workspace');
    try { await api().deleteWorkspace(id); }
    catch (error) { await pickWorkspace(id); throw error; }
    try { sessionStorage.removeItem(POSITION_PREFIX + id); } catch { /* ignore */ }
    await pickWorkspace(null);
    await loadWorkspaces();
  });
});

$('ws-refresh').addEventListener('click', () => void run($('ws-refresh'), 'Loading workspaces', loadWorkspaces));
$('ws-select').addEventListener('change', () => void pickWorkspace($('ws-select').value || null));

$('ws-create-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('ws-create'), 'Creating the workspace', async () => {
    const name = $('ws-name').value.trim();
    const description = $('ws-description').value.trim();
    if (!name) throw new Error('enter a name for the workspace');
    const created = await api().createWorkspace(description ? { name, description } : { name });
    $('ws-name').value = ''; $('ws-description').value = '';
    await loadWorkspaces();
    if (!S.workspaces.some((w) => w.id === created.id)) { S.workspaces.push(created); renderWorkspaces(); }
    await pickWorkspace(created.id);
  });
});

function resetWorkspaceView() {
  S.members.clear(); S.tasks.clear(); S.taskViews.clear(); S.deletedTasks.clear(); S.taskLoad++;
  S.lostAccess = null;
  clearTimeout(presenceTimer);
  $('member-list').replaceChildren(); $('member-count').textContent = '';
  $('presence-list').replaceChildren(); $('presence-count').textContent = '';
  $('task-list').replaceChildren(); $('task-status').textContent = ''; $('task-status').classList.remove('bad');
  $('message-list').replaceChildren();
  S.groups = []; $('group-list').replaceChildren(); $('group-count').textContent = '';
  $('message-group').replaceChildren(el('option', { value: '' }, 'to everyone'));
  $('event-log').replaceChildren(); unnamedEntries.clear();
  $('last-seq').textContent = '';
  S.exports.clear(); clearTimeout(exportPollTimer); exportPollTimer = null;
  $('export-list').replaceChildren();
  setRecovery(null, '');
  renderTaskCount();
}

/** Counts workspace picks: a pick that was overtaken while it loaded does not connect. */
let picks = 0;

async function pickWorkspace(id) {
  disconnect('switching workspace');
  resetWorkspaceView();
  S.ws = id ? S.workspaces.find((w) => w.id === id) || null : null;
  saveWorkspaceChoice();
  renderWorkspaces();
  if (!S.ws) return;
  const pick = ++picks;
  const others = Promise.all([loadTasks(), loadPresence(), loadExports(), loadGroups(), loadWebhooks()]);
  // The members first: the events the room catches up on name their users.
  await loadMembers();
  if (pick !== picks || !S.ws) return; // another workspace (or none) was picked meanwhile
  // Resume where this tab last was in the workspace (kept across reloads), else start live.
  live.workspaceId = S.ws.id;
  live.position = loadPosition(S.ws.id);
  live.everConnected = false;
  connect();
  await others;
}

// ---------- members ----------
async function loadMembers() {
  if (!S.ws) return;
  const wsId = S.ws.id;
  try {
    const items = await listAll((query) => api().listMembers(wsId, query));
    if (!S.ws || S.ws.id !== wsId) return;
    S.members = new Map(items.map((m) => [m.user_id, m]));
    for (const m of items) S.names.set(m.user_id, m.name);
    renameLogEntries();
    const mine = S.members.get(S.me && S.me.id);
    if (mine && mine.role !== S.ws.role) {
      S.ws.role = mine.role;
      const listed = S.workspaces.find((w) => w.id === S.ws.id);
      if (listed) listed.role = mine.role;
      renderWorkspaces();
    }
    renderMembers();
  } catch (error) {
    if (!S.lostAccess) showError(error, 'Loading members');
  }
}

function nameOf(userId) {
  if (!userId) return 'system';
  if (S.me && userId === S.me.id) return 'you';
  const member = S.members.get(userId);
  if (member) return member.name;
  const known = S.names.get(userId);
  if (known) return known;
  unnamed = true;
  return 'user ' + short(userId);
}
/** Set when nameOf() had no name for an id: a log entry written then is named again once the members are in. */
let unnamed = false;

/** What the caller may do to a member: change the role (owner), remove (owner, admin), leave (self). */
function memberActions(m) {
  const self = S.me && m.user_id === S.me.id;
  const actions = [];
  if (m.role === 'owner') return actions;
  if (!self && can.changeRoles()) {
    const select = el('select', { testid: 'member-role-change', 'aria-label': 'Role of ' + m.name },
      el('option', { value: 'member', selected: m.role === 'member' }, 'member'),
      el('option', { value: 'admin', selected: m.role === 'admin' }, 'admin'));
    select.addEventListener('change', () => {
      const role = select.value;
      void run(select, 'Changing the role', async () => {
        try {
          const updated = await api().updateMemberRole(S.ws.id, m.user_id, { role });
          S.members.set(updated.user_id, updated);
          renderMembers();
        } catch (error) { select.value = m.role; throw error; }
      });
    });
    actions.push(select);
  }
  if (!self && can.manageMembers()) {
    const remove = el('button', { type: 'button', class: 'danger small', testid: 'member-remove-button', title: 'Remove ' + m.name }, 'Remove');
    remove.addEventListener('click', () => {
      if (!confirm(`Remove ${m.name} from the workspace?`)) return;
      void run(remove, 'Removing the member', async () => {
        await api().removeMember(S.ws.id, m.user_id);
        S.members.delete(m.user_id);
        renderMembers();
      });
    });
    actions.push(remove);
  }
  if (self) {
    const leave = el('button', { type: 'button', class: 'danger small', testid: 'member-leave-button' }, 'Leave');
    leave.addEventListener('click', () => {
      if (!confirm('Leave this workspace?')) return;
      void run(leave, 'Leaving the workspace', async () => {
        const id = S.ws.id;
        disconnect('leaving the workspace');
        try { await api().removeMember(id, m.user_id); }
        catch (error) { await pickWorkspace(id); throw error; }
        try { sessionStorage.removeItem(POSITION_PREFIX + id); } catch { /* ignore */ }
        await pickWorkspace(null);
        await loadWorkspaces();
      });
    });
    actions.push(leave);
  }
  return actions;
}

function renderMembers() {
  const list = $('member-list');
  const items = [...S.members.values()].map((m) => {
    const actions = memberActions(m);
    return el('li', { testid: 'member-item', data: { userId: m.user_id, role: m.role } },
      el('span', { testid: 'member-name' }, m.name + (S.me && m.user_id === S.me.id ? ' (you)' : '')),
      el('span', { class: 'role', testid: 'member-role' }, m.role),
      el('span', { class: 'email', title: m.email }, m.email),
      actions.length ? el('span', { class: 'member-actions' }, actions) : null);
  });
  list.replaceChildren(...(items.length ? items : [el('li', { class: 'empty' }, 'No members loaded.')]));
  $('member-count').textContent = S.members.size ? String(S.members.size) : '';
  for (const [id, view] of S.taskViews) fillTaskView(view, S.tasks.get(id));
}

$('member-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('member-add'), 'Adding the member', async () => {
    if (!S.ws) throw new Error('pick a workspace first');
    const email = $('member-email').value.trim();
    if (!email) throw new Error('enter the e-mail of a registered user');
    const member = await api().addMember(S.ws.id, { email, role: $('member-role').value });
    $('member-email').value = '';
    S.members.set(member.user_id, member);
    S.names.set(member.user_id, member.name);
    renderMembers();
  });
});

// ---------- presence ----------
let presenceTimer = null;
function loadPresenceSoon() { clearTimeout(presenceTimer); presenceTimer = setTimeout(() => void loadPresence(), 150); }

async function loadPresence() {
  if (!S.ws) return;
  const wsId = S.ws.id;
  try {
    const data = await api().getPresence(wsId);
    if (!S.ws || S.ws.id !== wsId) return;
    const items = Array.isArray(data && data.items) ? data.items : [];
    $('presence-list').replaceChildren(...(items.length ? items.map((p) => el('li', { testid: 'presence-item', data: { userId: p.user_id } },
      el('span', { class: 'dot' }),
      el('span', { testid: 'presence-name' }, p.name || nameOf(p.user_id)),
      el('small', {}, `${p.connections > 1 ? p.connections + ' connections · ' : ''}since ${timeOf(p.connected_at)}`))) : [el('li', { class: 'empty' }, 'Nobody is connected.')]));
    $('presence-count').textContent = String(items.length);
  } catch (error) {
    if (!S.lostAccess) showError(error, 'Loading presence');
  }
}
$('presence-refresh').addEventListener('click', () => void run($('presence-refresh'), 'Loading presence', loadPresence));

// ---------- tasks ----------
/** Merges the listed tasks into the board (events keep it current from there). */
async function loadTasks() {
  if (!S.ws) return;
  const wsId = S.ws.id;
  const load = ++S.taskLoad;
  const status = $('task-status');
  try {
    const items = await listAll((query) => api().listTasks(wsId, query));
    if (load !== S.taskLoad || !S.ws || S.ws.id !== wsId) return;
    for (const task of items) upsertTask(task, false);
    status.textContent = ''; status.classList.remove('bad');
  } catch (error) {
    if (load !== S.taskLoad) return;
    status.textContent = 'Could not load tasks: ' + describe(error);
    status.classList.add('bad');
  }
}
// A reload starts over from the list: what it does not hold is gone.
$('tasks-refresh').addEventListener('click', () => void run($('tasks-refresh'), 'Loading tasks', () => {
  S.tasks.clear(); S.taskViews.clear(); S.deletedTasks.clear();
  $('task-list').replaceChildren();
  renderTaskCount();
  return loadTasks();
}));

function renderTaskCount() {
  $('task-count').textContent = S.tasks.size ? String(S.tasks.size) : '';
  $('task-empty').hidden = S.tasks.size > 0;
}

/**
 * Adds or updates a task; an older version (by updated_at) never replaces a newer
 * one and a deleted task never comes back, so REST answers and events may arrive
 * in any order.
 */
function upsertTask(task, fromEvent) {
  if (!task || typeof task.id !== 'string' || (S.ws && task.workspace_id && task.workspace_id !== S.ws.id)) return;
  if (S.deletedTasks.has(task.id)) return;
  const current = S.tasks.get(task.id);
  if (current && Date.parse(task.updated_at) < Date.parse(current.updated_at)) return;
  const next = { ...task };
  S.tasks.set(task.id, next);
  let view = S.taskViews.get(task.id);
  if (!view) {
    view = createTaskView(next);
    S.taskViews.set(task.id, view);
    insertTaskView(view, next);
  }
  fillTaskView(view, next);
  if (fromEvent) { view.li.classList.remove('flash'); void view.li.offsetWidth; view.li.classList.add('flash'); }
  renderTaskCount();
}

function removeTask(id) {
  S.deletedTasks.add(id);
  S.tasks.delete(id);
  const view = S.taskViews.get(id);
  if (view) { view.li.remove(); S.taskViews.delete(id); }
  renderTaskCount();
}

/** Newest first: a new task goes before the first one created earlier; existing items never move. */
function insertTaskView(view, task) {
  const list = $('task-list');
  const created = Date.parse(task.created_at) || Date.now();
  for (const other of list.children) {
    const otherTask = S.tasks.get(other.dataset.taskId);
    if (otherTask && (Date.parse(otherTask.created_at) || 0) < created) { list.insertBefore(view.li, other); return; }
  }
  list.append(view.li);
}

function options(values, current) {
  return values.map((v) => el('option', { value: v, selected: v === current }, v.replace('_', ' ')));
}

function createTaskView(task) {
  const view = {};
  view.title = el('span', { class: 'task-title', testid: 'task-title' });
  view.statusBadge = el('span', { class: 'badge', testid: 'task-status' });
  view.priorityBadge = el('span', { class: 'badge', testid: 'task-priority' });
  view.desc = el('p', { class: 'task-desc', testid: 'task-description' });
  view.labelBadges = el('span', { testid: 'task-labels' });
  view.labels = el('input', { testid: 'task-labels-edit', placeholder: 'labels', 'aria-label': 'Labels, comma-separated', size: '18' });
  view.status = el('select', { testid: 'task-status-select', 'aria-label': 'Status' }, options(STATUSES, task.status));
  view.priority = el('select', { testid: 'task-priority-select', 'aria-label': 'Priority' }, options(PRIORITIES, task.priority));
  view.assignee = el('select', { testid: 'task-assignee-select', 'aria-label': 'Assignee' });
  view.commentsToggle = el('button', { type: 'button', class: 'secondary small', testid: 'task-comments-toggle' }, 'Comments');
  view.deleteButton = el('button', { type: 'button', class: 'danger small', testid: 'task-delete-button' }, 'Delete');
  view.watchButton = el('button', { type: 'button', class: 'secondary small', testid: 'task-watch-button', title: 'PUT or DELETE /tasks/:id/watchers/:me' }, 'Watch');
  view.meta = el('div', { class: 'task-meta', testid: 'task-meta' });
  view.commentList = el('ul', { class: 'plain', testid: 'comment-list' });
  view.commentInput = el('input', { testid: 'comment-input', placeholder: 'Write a comment', maxlength: '5000', 'aria-label': 'Comment' });
  view.commentButton = el('button', { type: 'submit', class: 'small', testid: 'comment-add-button' }, 'Comment');
  view.commentForm = el('form', { class: 'row' }, view.commentInput, view.commentButton);
  view.comments = el('div', { class: 'comments', testid: 'task-comments', hidden: true }, view.commentList, view.commentForm);
  view.commentMap = new Map();   // comment id -> { comment, li }
  view.commentsLoaded = false;
  view.unseen = 0;
  view.li = el('li', { testid: 'task-item', data: { taskId: task.id } },
    el('div', { class: 'task-head' }, view.title, view.statusBadge, view.priorityBadge, view.labelBadges),
    view.desc,
    el('div', { class: 'task-controls' },
      el('label', { class: 'inline' }, 'status', view.status),
      el('label', { class: 'inline' }, 'priority', view.priority),
      el('label', { class: 'inline' }, 'assignee', view.assignee),
      el('label', { class: 'inline' }, 'labels', view.labels),
      view.commentsToggle, view.watchButton, view.deleteButton),
    view.meta,
    view.comments);

  const id = task.id;
  const update = (select, field) => select.addEventListener('change', () => {
    const value = select.value;
    void run(select, `Changing ${field}`, async () => {
      try {
        upsertTask(await api().updateTask(id, { [field]: value }), false);
      } catch (error) {
        const current = S.tasks.get(id);
        if (current) select.value = current[field];
        throw error;
      }
    });
  });
  view.labels.addEventListener('change', () => {
    void run(view.labels, 'Changing labels', async () => {
      try {
        upsertTask(await api().updateTask(id, { labels: labelList(view.labels.value) }), false);
      } catch (error) {
        const current = S.tasks.get(id);
        if (current) view.labels.value = (current.labels || []).join(', ');
        throw error;
      }
    });
  });
  update(view.status, 'status');
  update(view.priority, 'priority');
  view.assignee.addEventListener('change', () => {
    const value = view.assignee.value || null;
    void run(view.assignee, 'Assigning the task', async () => {
      try {
        upsertTask(await api().assignTask(id, { assignee_id: value }), false);
      } catch (error) {
        const current = S.tasks.get(id);
        if (current) fillAssignees(view);
        throw error;
      }
    });
  });
  view.watchButton.addEventListener('click', () => {
    void run(view.watchButton, 'Watching the task', async () => {
      const watching = (S.tasks.get(id)?.watcher_ids || []).includes(S.me.id);
      if (watching) await api().removeWatcher(id, S.me.id);
      else await api().addWatcher(id, S.me.id);
      watcherEvent(!watching, { task_id: id, user_id: S.me.id });
    });
  });
  view.deleteButton.addEventListener('click', () => {
    if (!confirm('Delete this task?')) return;
    void run(view.deleteButton, 'Deleting the task', async () => {
      await api().deleteTask(id);
      removeTask(id);
    });
  });
  view.commentsToggle.addEventListener('click', () => {
    view.comments.hidden = !view.comments.hidden;
    if (!view.comments.hidden) {
      view.unseen = 0;
      renderCommentToggle(view);
      if (!view.commentsLoaded) void run(view.commentsToggle, 'Loading comments', () => loadComments(id, view));
    }
  });
  view.commentForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void run(view.commentButton, 'Adding the comment', async () => {
      const content = view.commentInput.value.trim();
      if (!content) throw new Error('write something first');
      const comment = await api().createComment(S.ws.id, { task_id: id, content });
      view.commentInput.value = '';
      upsertComment(view, comment, false);
    });
  });
  return view;
}

function fillTaskView(view, task) {
  view.li.dataset.status = task.status || '';
  view.li.dataset.priority = task.priority || '';
  view.title.textContent = task.title || '(untitled)';
  view.statusBadge.textContent = String(task.status || '').replace('_', ' ');
  view.statusBadge.className = 'badge status-' + task.status;
  view.priorityBadge.textContent = task.priority || '';
  view.priorityBadge.className = 'badge priority-' + task.priority;
  view.labelBadges.replaceChildren(...(task.labels || []).map((l) => el('span', { class: 'badge', testid: 'task-label' }, l)));
  if (document.activeElement !== view.labels) view.labels.value = (task.labels || []).join(', ');
  view.desc.textContent = task.description || '';
  view.desc.hidden = !task.description;
  if (document.activeElement !== view.status) view.status.value = task.status;
  if (document.activeElement !== view.priority) view.priority.value = task.priority;
  fillAssignees(view);
  view.deleteButton.hidden = !can.deleteTask(task);
  const due = task.due_date ? ` · due ${task.due_date}` : '';
  const watchers = task.watcher_ids || [];
  view.meta.textContent = `created by ${nameOf(task.created_by)} · updated ${timeOf(task.updated_at)}${due} · watched by ${watchers.map(nameOf).join(', ') || 'nobody'}`;
  view.watchButton.textContent = S.me && watchers.includes(S.me.id) ? 'Unwatch' : 'Watch';
}

/** A watcher added or removed (by an event, or by this page): the task's watcher_ids follow. */
function watcherEvent(added, data) {
  const task = S.tasks.get(data.task_id);
  const view = S.taskViews.get(data.task_id);
  if (!task || !view) return;
  const others = (task.watcher_ids || []).filter((w) => w !== data.user_id);
  task.watcher_ids = added ? [...others, data.user_id] : others;
  fillTaskView(view, task);
}

/** "a, b ,c" as ["a", "b", "c"]. */
function labelList(text) {
  return text.split(',').map((l) => l.trim()).filter(Boolean);
}

function fillAssignees(view) {
  const task = S.tasks.get(view.li.dataset.taskId);
  if (!task) return;
  const opts = [el('option', { value: '' }, 'unassigned')];
  for (const m of S.members.values()) opts.push(el('option', { value: m.user_id }, m.name));
  if (task.assignee_id && !S.members.has(task.assignee_id)) opts.push(el('option', { value: task.assignee_id }, 'user ' + short(task.assignee_id)));
  view.assignee.replaceChildren(...opts);
  view.assignee.value = task.assignee_id || '';
}

// ---------- comments ----------
async function loadComments(taskId, view) {
  const items = await listAll((query) => api().listTaskComments(taskId, query));
  view.commentsLoaded = true;
  for (const c of items) upsertComment(view, c, false);
  if (!view.commentMap.size) view.commentList.replaceChildren(el('li', { class: 'empty' }, 'No comments yet.'));
}

function upsertComment(view, comment, fromEvent) {
  if (!comment || typeof comment.id !== 'string') return;
  const existing = view.commentMap.get(comment.id);
  if (existing && Date.parse(comment.updated_at) < Date.parse(existing.comment.updated_at)) return;
  const li = existing ? existing.li : el('li', { testid: 'comment-item', data: { commentId: comment.id } });
  li.replaceChildren(el('b', {}, nameOf(comment.author_id)), ': ', el('span', { testid: 'comment-content' }, comment.content),
    ' ', el('small', {}, timeOf(comment.created_at) + (comment.updated_at !== comment.created_at ? ' (edited)' : '')));
  if (!existing) {
    const empty = view.commentList.querySelector('.empty');
    if (empty) empty.remove();
    view.commentList.append(li);
  }
  view.commentMap.set(comment.id, { comment, li });
  if (fromEvent && !existing && view.comments.hidden) { view.unseen++; renderCommentToggle(view); }
}

function renderCommentToggle(view) {
  view.commentsToggle.textContent = view.unseen ? `Comments (${view.unseen} new)` : 'Comments';
}

function commentEvent(type, data, aggregateId) {
  if (type === 'comment.deleted') {
    const id = (data && data.id) || aggregateId;
    for (const view of S.taskViews.values()) {
      const entry = view.commentMap.get(id);
      if (entry) { entry.li.remove(); view.commentMap.delete(id); }
    }
    return;
  }
  const view = data && S.taskViews.get(data.task_id);
  if (!view) return;
  // Comments not loaded yet: count the new one; the list loads in full when opened.
  if (!view.commentsLoaded) { if (type === 'comment.created') { view.unseen++; renderCommentToggle(view); } return; }
  upsertComment(view, data, true);
}

// ---------- task creation ----------
$('task-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('task-create'), 'Creating the task', async () => {
    if (!S.ws) throw new Error('pick a workspace first');
    const title = $('task-title').value.trim();
    if (!title) throw new Error('enter a title for the task');
    const body = { title, priority: $('task-priority').value };
    const description = $('task-description').value.trim();
    if (description) body.description = description;
    const labels = labelList($('task-labels').value);
    if (labels.length) body.labels = labels;
    const task = await api().createTask(S.ws.id, body);
    $('task-title').value = ''; $('task-description').value = ''; $('task-labels').value = '';
    upsertTask(task, false);
  });
});

// ---------- exports ----------
const EXPORT_RANK = { pending: 0, running: 1, completed: 2, failed: 2 };
let exportPollTimer = null;

async function loadExports() {
  if (!S.ws) return;
  const wsId = S.ws.id;
  try {
    const data = await api().listExports(wsId, { limit: 20 });
    if (!S.ws || S.ws.id !== wsId) return;
    const items = Array.isArray(data && data.items) ? data.items : [];
    for (const job of items.slice().reverse()) upsertExport(job, false);
    renderExportEmpty();
  } catch (error) {
    if (!S.lostAccess) showError(error, 'Loading exports');
  }
}

function renderExportEmpty() {
  const list = $('export-list');
  const empty = list.querySelector('.empty');
  if (S.exports.size && empty) empty.remove();
  if (!S.exports.size && !empty) list.append(el('li', { class: 'empty' }, 'No exports yet.'));
}

/** Adds or updates a job; a later state (by status, then progress) is never replaced by an earlier one. */
function upsertExport(job, fromEvent) {
  if (!job || typeof job.id !== 'string' || (S.ws && job.workspace_id && job.workspace_id !== S.ws.id)) return;
  let entry = S.exports.get(job.id);
  if (entry) {
    const was = entry.job;
    const rank = EXPORT_RANK[job.status] ?? 0; const wasRank = EXPORT_RANK[was.status] ?? 0;
    if (rank < wasRank || (rank === wasRank && (job.progress || 0) < (was.progress || 0))) return;
    entry.job = { ...job };
  } else {
    entry = { job: { ...job }, view: createExportView(job), lastEventAt: 0 };
    S.exports.set(job.id, entry);
    $('export-list').prepend(entry.view.li);
  }
  if (fromEvent) entry.lastEventAt = Date.now();
  fillExportView(entry);
  renderExportEmpty();
  scheduleExportPoll();
}

function createExportView(job) {
  const view = {};
  view.label = el('span', { testid: 'export-label' }, `${job.type} · ${job.format}`);
  view.status = el('span', { class: 'export-status', testid: 'export-status' });
  view.bar = el('progress', { max: '100', value: '0', testid: 'export-progress' });
  view.percent = el('span', { testid: 'export-percent' });
  view.rows = el('small', { testid: 'export-rows' });
  view.download = el('button', { type: 'button', class: 'small', testid: 'export-download-button', hidden: true }, 'Download');
  view.li = el('li', { testid: 'export-item', data: { exportId: job.id } },
    view.label, view.status, view.bar, view.percent, view.rows, view.download);
  view.download.addEventListener('click', () => void run(view.download, 'Downloading the export', () => downloadExport(job.id)));
  return view;
}

function fillExportView(entry) {
  const { job, view } = entry;
  const progress = job.status === 'completed' ? 100 : Math.max(0, Math.min(100, Number(job.progress) || 0));
  view.li.dataset.status = job.status;
  view.li.dataset.progress = String(progress);
  view.status.dataset.status = job.status;
  view.status.textContent = job.status + (job.status === 'failed' && job.error ? ': ' + job.error : '');
  view.bar.value = progress;
  view.percent.textContent = progress + '%';
  view.rows.textContent = job.row_count ? `${job.row_count} rows` : '';
  view.download.hidden = job.status !== 'completed';
}

/** Live progress comes from export.* events; while a job runs without one for a while (or the socket is down), GET /exports/:id. */
function scheduleExportPoll() {
  if (exportPollTimer) return;
  const active = [...S.exports.values()].some((e) => e.job.status === 'pending' || e.job.status === 'running');
  if (!active) return;
  exportPollTimer = setTimeout(() => {
    exportPollTimer = null;
    void pollExports().finally(scheduleExportPoll);
  }, 2000);
}

async function pollExports() {
  const socketLive = Boolean(live.sub) && live.state === 'open';
  for (const entry of [...S.exports.values()]) {
    if (entry.job.status !== 'pending' && entry.job.status !== 'running') continue;
    if (socketLive && Date.now() - entry.lastEventAt < 3000) continue;
    try { upsertExport(await api().getExport(entry.job.id), false); }
    catch (error) { if (error instanceof TaskboardError && error.status === 404) { entry.job.status = 'failed'; entry.job.error = 'gone'; fillExportView(entry); } }
  }
}

async function downloadExport(id) {
  const entry = S.exports.get(id);
  const job = entry ? entry.job : { type: 'export', format: 'txt' };
  const { blob, filename } = await apiDownload(id, `${job.type}-${short(id)}.${job.format}`);
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

$('export-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('export-create'), 'Creating the export', async () => {
    if (!S.ws) throw new Error('pick a workspace first');
    const job = await api().createExport(S.ws.id, { type: $('export-type').value, format: $('export-format').value });
    upsertExport(job, false);
  });
});
$('exports-refresh').addEventListener('click', () => void run($('exports-refresh'), 'Loading exports', loadExports));

// ---------- groups ----------
async function loadGroups() {
  if (!S.ws) return;
  const wsId = S.ws.id;
  try {
    const { items } = await api().listGroups(wsId);
    if (!S.ws || S.ws.id !== wsId) return;
    S.groups = items;
    renderGroups();
  } catch (error) {
    if (!S.lostAccess) showError(error, 'Loading groups');
  }
}

function renderGroups() {
  const manage = can.manageGroups();
  $('group-form').hidden = !manage;
  $('group-count').textContent = S.groups.length ? `(${S.groups.length})` : '';
  $('group-list').replaceChildren(...S.groups.map((group) => {
    const members = group.member_ids.map((id) => el('span', { class: 'badge', testid: 'group-member', data: { userId: id } }, nameOf(id),
      manage ? el('button', { type: 'button', class: 'link', testid: 'group-member-remove', title: 'Remove from the group', onclick: () => changeGroup(group, id, false) }, '×') : null));
    const addable = [...S.members.values()].filter((m) => !group.member_ids.includes(m.user_id));
    const add = manage && addable.length
      ? el('select', { testid: 'group-member-add', 'aria-label': 'Add a member', onchange: (event) => { if (event.target.value) changeGroup(group, event.target.value, true); } },
          el('option', { value: '' }, '+ member'), addable.map((m) => el('option', { value: m.user_id }, m.name)))
      : null;
    return el('li', { testid: 'group-item', data: { groupId: group.id } }, el('b', { testid: 'group-name' }, group.name), ': ', members, add);
  }));
  // The message form sends to everyone or to a group the user belongs to.
  const select = $('message-group');
  const chosen = select.value;
  const mine = S.groups.filter((g) => S.me && g.member_ids.includes(S.me.id));
  select.replaceChildren(el('option', { value: '' }, 'to everyone'), ...mine.map((g) => el('option', { value: g.id, selected: g.id === chosen }, 'to ' + g.name)));
}

function changeGroup(group, userId, join) {
  void run(null, join ? 'Adding to the group' : 'Removing from the group', async () => {
    if (join) await api().addGroupMember(S.ws.id, group.id, userId);
    else await api().removeGroupMember(S.ws.id, group.id, userId);
    await loadGroups();
  });
}

$('group-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('group-create'), 'Creating the group', async () => {
    const name = $('group-name').value.trim();
    if (!name) throw new Error('name the group first');
    await api().createGroup(S.ws.id, { name });
    $('group-name').value = '';
    await loadGroups();
  });
});

// ---------- webhooks (owners and admins) ----------
async function loadWebhooks() {
  $('webhooks').hidden = !can.manageWebhooks();
  if (!S.ws || !can.manageWebhooks()) return;
  const wsId = S.ws.id;
  try {
    const { items } = await api().listWebhooks(wsId);
    if (!S.ws || S.ws.id !== wsId) return;
    $('webhook-count').textContent = items.length ? `(${items.length})` : '';
    $('webhook-list').replaceChildren(...items.map((hook) => el('li', { testid: 'webhook-item', data: { webhookId: hook.id, active: String(hook.active) } },
      el('code', {}, hook.url), ' ', hook.events.join(', '), hook.active ? '' : ' (inactive)',
      el('button', { type: 'button', class: 'link', testid: 'webhook-delete', title: 'DELETE /webhooks/:id', onclick: () => void run(null, 'Deleting the webhook', async () => { await api().deleteWebhook(hook.id); await loadWebhooks(); }) }, '×'))));
  } catch (error) {
    if (!S.lostAccess) showError(error, 'Loading webhooks');
  }
}

$('webhook-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run($('webhook-create'), 'Adding the webhook', async () => {
    const events = $('webhook-events').value.split(',').map((e) => e.trim()).filter(Boolean);
    const created = await api().createWebhook(S.ws.id, { url: $('webhook-url').value.trim(), events });
    // The secret is shown this once: the receiver checks Taskboard-Signature with it.
    $('webhook-secret').textContent = `Signing secret (shown once): ${created.secret}`;
    $('webhook-secret').hidden = false;
    $('webhook-url').value = '';
    await loadWebhooks();
  });
});

// ---------- messages ----------
function messageText(data) {
  if (data && typeof data.text === 'string') return data.text;
  if (data && typeof data.content === 'string') return data.content;
  return JSON.stringify(data);
}

function addMessage(frame) {
  const data = frame.data || {};
  const list = $('message-list');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 20;
  const group = frame.group_id ? S.groups.find((g) => g.id === frame.group_id) : undefined;
  list.append(el('li', { testid: 'message-item', class: data.broadcast ? 'broadcast' : null, data: { seq: String(frame.seq), groupId: frame.group_id } },
    el('small', {}, timeOf(frame.timestamp) + ' '),
    frame.group_id ? el('span', { class: 'badge', testid: 'message-group' }, group ? group.name : 'group') : null,
    el('b', { testid: 'message-author' }, nameOf(frame.user_id)),
    data.broadcast ? ' (broadcast)' : '', ': ',
    el('span', { testid: 'message-text' }, messageText(data))));
  while (list.children.length > 200) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

$('message-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('message-text');
  const text = input.value.trim();
  if (!text) return;
  if (!live.sub || live.state !== 'open') { showError(new Error('not connected to the workspace room'), 'Sending the message'); return; }
  const groupId = $('message-group').value || undefined;
  // {"type":"custom.message","data":{text}} to the room, with "group_id" to a group's members only
  try { live.sub.send({ text }, { groupId }); }
  catch (error) { showError(error, 'Sending the message'); return; }
  input.value = '';
});

$('message-broadcast').addEventListener('click', () => {
  void run($('message-broadcast'), 'Broadcasting', async () => {
    const content = $('message-text').value.trim();
    if (!content) throw new Error('write the message first');
    await api().broadcastMessage(S.ws.id, { content });
    $('message-text').value = '';
  });
});

$('ping').addEventListener('click', () => {
  if (!live.sub || live.state !== 'open') { showError(new Error('not connected to the workspace room'), 'Ping'); return; }
  try { live.sub.ping(); } catch (error) { showError(error, 'Ping'); }
});

// ---------- event log ----------
const MAX_LOG = 500;

function summary(frame) {
  const d = frame.data && typeof frame.data === 'object' ? frame.data : {};
  const type = String(frame.type || '');
  if (type === 'connected') {
    let text = `connected to the room · connection ${short(frame.connection_id)} · latest seq ${frame.seq}`;
    if (frame.recovered === true) text += ' · resumed';
    if (frame.recovered === false) text += ' · history reset';
    return text;
  }
  if (type === 'error') return `${frame.code}: ${frame.message}`;
  if (type === 'pong') return 'pong';
  if (type === 'task.deleted') { const t = S.tasks.get(d.id); return `task ${t ? '"' + clip(t.title, 60) + '"' : short(d.id)} deleted`; }
  if (type === 'task.watcher_added' || type === 'task.watcher_removed') {
    const t = S.tasks.get(d.task_id);
    return `${nameOf(d.user_id)} ${type === 'task.watcher_added' ? 'watches' : 'stopped watching'} ${t ? '"' + clip(t.title, 60) + '"' : 'task ' + short(d.task_id)}`;
  }
  if (type.startsWith('task.')) {
    const parts = [d.title !== undefined ? `"${clip(d.title, 60)}"` : 'task ' + short(d.id), d.status, d.priority];
    if (type === 'task.assigned' || d.assignee_id) parts.push(d.assignee_id ? '→ ' + nameOf(d.assignee_id) : 'unassigned');
    return parts.filter(Boolean).join(' · ');
  }
  if (type === 'comment.deleted') return `comment ${short(d.id)} deleted`;
  if (type.startsWith('comment.')) {
    const t = S.tasks.get(d.task_id);
    return `on ${t ? '"' + clip(t.title, 40) + '"' : 'task ' + short(d.task_id)}: ${clip(d.content, 80)}`;
  }
  if (type === 'custom.message') return (d.broadcast ? '[broadcast] ' : '') + clip(messageText(d), 120);
  if (type.startsWith('presence.')) return `${d.name || nameOf(d.user_id)} ${type === 'presence.joined' ? 'joined' : 'left'}`;
  if (type === 'member.removed') return `${nameOf(d.user_id || d.id || frame.aggregate_id)} removed`;
  if (type.startsWith('member.')) return [d.name || nameOf(d.user_id || d.id), d.email, d.role].filter(Boolean).join(' · ');
  if (type.startsWith('notification.')) {
    const about = d.event_type ? `mail about ${d.event_type}` : 'mail';
    const outcome = type === 'notification.sent' ? 'sent' : `failed${d.reason ? ' (' + d.reason + ')' : ''}`;
    return `${about} to ${nameOf(d.recipient_id)} · ${outcome}`;
  }
  if (type.startsWith('workspace.')) return d.name ? `"${clip(d.name, 60)}"` : short(d.id);
  if (type.startsWith('export.')) return [d.type, d.format, d.status, d.progress !== undefined ? d.progress + '%' : null].filter((v) => v !== undefined && v !== null).join(' · ');
  return clip(JSON.stringify(frame.data !== undefined ? frame.data : frame), 120);
}

/** Log entries whose frame named a user the page did not know yet (events caught up before the members loaded): entry -> how to name it again. */
const unnamedEntries = new Map();

function logFrame(frame, kind) {
  const log = $('event-log');
  // Events carry their seq; the connected frame's seq (the room's latest) is in its summary.
  const hasSeq = typeof frame.seq === 'number' && frame.type !== 'connected';
  const actorView = el('span', { class: 'actor', testid: 'event-actor' });
  const summaryView = el('span', { class: 'summary', testid: 'event-summary' });
  const name = () => {
    unnamed = false;
    const actor = frame.user_id !== undefined ? nameOf(frame.user_id) : (frame.type === 'error' || frame.type === 'pong' || frame.type === 'connected' ? 'server' : '');
    actorView.textContent = [actor, frame.timestamp ? ' · ' + timeOf(frame.timestamp) : '', kind === 'missed' ? ' · missed while away' : ''].join('');
    summaryView.textContent = summary(frame);
    return !unnamed;
  };
  const raw = el('pre', { hidden: true }, JSON.stringify(frame, null, 2));
  const li = el('li', {
    testid: 'event-entry',
    class: kind || (frame.type === 'error' ? 'error' : null),
    data: { type: String(frame.type), seq: hasSeq ? String(frame.seq) : '' },
  },
  el('span', { class: 'seq', testid: 'event-seq' }, hasSeq ? '#' + frame.seq : '–'),
  el('span', { class: 'type', testid: 'event-type' }, String(frame.type)),
  actorView,
  summaryView,
  raw);
  if (!name()) unnamedEntries.set(li, name);
  li.addEventListener('click', () => { raw.hidden = !raw.hidden; });
  li.hidden = !logShows(li);
  log.prepend(li);
  while (log.children.length > MAX_LOG) log.lastElementChild.remove();
  renderLogHidden();
}

/** Names again the log entries written before their users' names were known. */
function renameLogEntries() {
  for (const [li, name] of unnamedEntries) {
    if (!li.isConnected || name()) unnamedEntries.delete(li);
  }
}

function logNote(text) {
  const log = $('event-log');
  const li = el('li', { class: 'note', testid: 'event-note', data: { type: '' } }, `${new Date().toLocaleTimeString()} · ${text}`);
  li.hidden = !logShows(li);
  log.prepend(li);
  while (log.children.length > MAX_LOG) log.lastElementChild.remove();
  renderLogHidden();
}

/** Whether the log's type filter (all, a type, `domain.*`, or connection frames and notes) lets an entry show. */
function logShows(li) {
  const filter = $('log-filter').value;
  if (!filter) return true;
  const type = li.dataset.type || '';
  if (filter === 'connection') return !type || !type.includes('.') || li.classList.contains('error');
  if (filter.endsWith('.*')) return type.startsWith(filter.slice(0, -1));
  return type === filter;
}
function renderLogHidden() {
  const hidden = $('event-log').querySelectorAll(':scope > li[hidden]').length;
  $('log-hidden').textContent = hidden ? `${hidden} hidden by the filter` : '';
}
$('log-filter').addEventListener('change', () => {
  for (const li of $('event-log').children) li.hidden = !logShows(li);
  renderLogHidden();
});
$('log-clear').addEventListener('click', () => { $('event-log').replaceChildren(); unnamedEntries.clear(); renderLogHidden(); });

// ---------- the room (the SDK's realtime subscription: a ticket per connect, resume, reconnects) ----------
const live = {
  sub: null,           // the RealtimeSubscription to the picked workspace (null: not connected)
  workspaceId: null,
  state: 'idle',       // the subscription's state: connecting, open, reconnecting, closed; idle without one
  position: null,      // { seq, epoch }: the last event seen and its epoch (kept per workspace in sessionStorage)
  attemptSince: null,  // the seq the current attempt resumes after (null: it starts live)
  attemptTransport: 'websocket',
  opened: false,       // whether the current attempt got its connected frame
  catchUp: null,       // { since, upTo, count } while a resumed connection delivers what was missed
  everConnected: false,
};

function setConn(state, text) {
  const node = $('conn-state');
  node.dataset.state = state;
  node.textContent = text;
  renderLastSeq();
}

function renderLastSeq() {
  $('last-seq').textContent = live.position && S.ws ? 'last seq ' + live.position.seq : '';
}

/** The outcome of the last connect: 'fresh' (no position), 'true' (resumed), 'false' (history reset), or '' (none). */
function setRecovery(state, text) {
  const node = $('recovery');
  node.dataset.recovered = state || '';
  node.textContent = text;
  if (state !== 'true') delete node.dataset.missed;
}

// The position (last seq and its epoch) survives a reload of the tab, per workspace.
function loadPosition(workspaceId) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(POSITION_PREFIX + workspaceId) || 'null');
    if (saved && Number.isSafeInteger(saved.seq) && saved.seq >= 0) return { seq: saved.seq, epoch: typeof saved.epoch === 'string' ? saved.epoch : null };
  } catch { /* ignore */ }
  return null;
}
/** Keeps the subscription's position (where a later connect resumes) for this tab. */
function savePosition(sub) {
  const { since, epoch } = sub.position;
  if (since === undefined || !live.workspaceId) return;
  live.position = { seq: since, epoch: epoch === undefined ? null : epoch };
  try { sessionStorage.setItem(POSITION_PREFIX + live.workspaceId, JSON.stringify(live.position)); } catch { /* storage may be off */ }
  renderLastSeq();
}

/**
 * Subscribes to the picked workspace's room from the kept position: the SDK takes a
 * single-use ticket before every connect (the access token never goes into a URL), resumes
 * with since and epoch, reconnects with backoff, and hands the open socket fresh tokens.
 */
function connect() {
  if (!S.ws || !S.client || live.sub) return;
  live.workspaceId = S.ws.id;
  const position = live.position;
  const sub = S.client.realtime(S.ws.id, position ? { since: position.seq, epoch: position.epoch === null ? undefined : position.epoch } : {});
  live.sub = sub;
  live.state = 'connecting';
  live.catchUp = null;
  // Listeners of a subscription the page has let go (disconnect, another workspace) are ignored.
  const current = (listener) => (value) => { if (live.sub === sub) listener(value, sub); };
  sub.on('status', current(onStatus));
  sub.on('connected', current(onConnected));
  sub.on('event', current(onEvent));
  sub.on('reset', current(onReset));
  sub.on('pong', current(() => logFrame({ type: 'pong' })));
  sub.on('error', current(onRealtimeError));
}

function disconnect(reason) {
  const sub = live.sub;
  live.sub = null;
  live.state = 'idle';
  live.catchUp = null;
  if (sub) {
    void sub.close();
    logNote('disconnected (' + reason + ')');
  }
  setConn('idle', 'not connected');
}

/** Connects again now (the Connect button, the browser back online) rather than after the backoff. */
function reconnectNow() {
  if (live.sub && live.state !== 'reconnecting') return;
  const sub = live.sub;
  live.sub = null;
  if (sub) void sub.close();
  connect();
}

function transportName(transport) { return transport === 'sse' ? 'stream' : 'socket'; }

function onStatus(status, sub) {
  live.state = status.state;
  if (status.state === 'connecting') {
    live.attemptSince = sub.position.since === undefined ? null : sub.position.since;
    live.attemptTransport = status.transport;
    live.opened = false;
    const via = status.transport === 'sse' ? ' over SSE' : '';
    setConn('connecting', live.attemptSince === null ? `connecting${via}…` : `connecting${via} (since ${live.attemptSince})…`);
  } else if (status.state === 'open') {
    setConn('connected', status.transport === 'sse' ? 'connected (SSE, receive only)' : 'connected');
  } else if (status.state === 'reconnecting') {
    logNote(endedNote(status));
    if (status.transport !== live.attemptTransport) logNote(`switching to ${status.transport === 'sse' ? 'Server-Sent Events' : 'WebSocket'}`);
    const wait = `${((status.delayMs || 0) / 1000).toFixed(1)} s`;
    setConn('reconnecting', status.code === 4001 ? `token expired: refreshing, reconnecting in ${wait}` : `reconnecting in ${wait} (attempt ${status.attempt})`);
  } else if (status.state === 'closed') {
    onClosed(status);
  }
}

/** What ended the last attempt, for the log. */
function endedNote(status) {
  if (status.code !== undefined) {
    const reason = status.reason && status.reason !== 'closed' ? ' ' + status.reason : '';
    return `${transportName(live.attemptTransport)} closed: ${status.code}${reason}${live.opened ? '' : ' (before the connected frame)'}`;
  }
  // No close code: the ticket request failed (no answer, 5xx, 429), or the transport could not start.
  if (status.reason === 'failed' && status.error instanceof TaskboardError) return 'cannot get a ticket: ' + describe(status.error);
  return `${status.reason || 'the connection failed'}${status.error ? ': ' + describe(status.error) : ''}`;
}

/** The subscription ended for good: removed (4003), workspace deleted (4004), flooding (1008), or access refused. */
function onClosed(status) {
  live.sub = null;
  const code = status.code;
  if (code !== undefined) logNote(`${transportName(live.attemptTransport)} closed: ${code}${status.reason ? ' ' + status.reason : ''}`);
  if (code === 4003 || code === 4004) {
    const text = code === 4003 ? 'you were removed from this workspace' : 'this workspace was deleted';
    S.lostAccess = text;
    clearTimeout(presenceTimer);
    setConn('closed', text);
    showError(new Error(text));
    void loadWorkspaces();
    return;
  }
  if (!S.client) { setConn('idle', 'not connected'); return; } // the session ended (a refused refresh)
  const error = status.error;
  if (error instanceof TaskboardError && (error.status === 403 || error.status === 404)) { loseAccess(error); return; }
  setConn('closed', status.reason || 'closed');
  showError(error || new Error(status.reason || 'the connection was closed'), 'Connecting');
}

function loseAccess(error) {
  S.lostAccess = 'no access to this workspace';
  setConn('closed', S.lostAccess);
  showError(error, 'Connecting');
}

function onRealtimeError(error) {
  if (error instanceof RealtimeFrameError) { logFrame({ type: 'error', code: error.code, message: error.message }); return; }
  if (error instanceof RealtimeClosedError) return; // told by the closed status
  logNote('realtime: ' + describe(error));
}

function onConnected(frame, sub) {
  live.opened = true;
  live.catchUp = null;
  const since = live.attemptSince;
  if (since === null || frame.recovered === undefined) {
    // A fresh connection starts at the room's latest seq.
    setRecovery('fresh', `live from seq ${frame.seq}`);
  } else if (frame.recovered === false) {
    // The server cannot replay what came after `since` (too old, from the future, another
    // epoch): nothing is sent for the gap; the subscription's `reset` reloads the state over
    // REST, and the position continues live from the room's latest seq.
    setRecovery('false', 'history reset — reloading state…');
  } else {
    // Every event after `since` follows (catch-up up to frame.seq, then live); the position is kept.
    live.catchUp = { since, upTo: typeof frame.seq === 'number' ? frame.seq : since, count: 0 };
    renderCatchUp();
  }
  savePosition(sub);
  logFrame(frame);
  if (since !== null && frame.recovered !== undefined) logNote(frame.recovered === false ? `could not resume after seq ${since}: history reset, reloading the state` : `resuming after seq ${since}: the missed events follow`);
  if (errorIsNetwork) hideError(); // the server is back
  if (frame.recovered === false) live.everConnected = true;
  else if (!live.everConnected) { live.everConnected = true; void loadTasks(); }
  else { void loadMembers(); }
  loadPresenceSoon();
}

function onReset(info, sub) {
  void reloadState().then(() => { if (live.sub === sub) setRecovery('false', 'history reset — state reloaded'); });
}

function onEvent(event, sub) {
  savePosition(sub);
  const missed = Boolean(live.catchUp) && event.seq <= live.catchUp.upTo;
  if (missed) { live.catchUp.count++; renderCatchUp(); }
  logFrame(event, missed ? 'missed' : undefined);
  try { applyEvent(event); } catch (error) { logNote('could not apply ' + event.type + ': ' + describe(error)); }
}

function renderCatchUp() {
  const c = live.catchUp;
  if (!c) return;
  setRecovery('true', `resumed: ${c.count} missed event${c.count === 1 ? '' : 's'} caught up`);
  $('recovery').dataset.missed = String(c.count);
}

/** After `recovered: false`: the board starts over from the REST answers (tasks, members, exports, presence). */
async function reloadState() {
  S.tasks.clear(); S.taskViews.clear(); S.deletedTasks.clear();
  $('task-list').replaceChildren();
  renderTaskCount();
  await Promise.all([loadTasks(), loadMembers(), loadExports(), loadPresence(), loadGroups(), loadWebhooks()]);
}

function applyEvent(frame) {
  const data = frame.data && typeof frame.data === 'object' ? frame.data : {};
  switch (frame.type) {
    case 'task.created': case 'task.updated': case 'task.assigned':
      upsertTask(data, true); break;
    case 'task.deleted':
      removeTask(data.id || frame.aggregate_id); break;
    case 'task.watcher_added': case 'task.watcher_removed':
      watcherEvent(frame.type === 'task.watcher_added', data); break;
    case 'comment.created': case 'comment.updated': case 'comment.deleted':
      commentEvent(frame.type, data, frame.aggregate_id); break;
    case 'custom.message':
      addMessage(frame); break;
    case 'group.created': case 'group.deleted': case 'group.member_added': case 'group.member_removed':
      void loadGroups(); break;
    case 'presence.joined': case 'presence.left':
      loadPresenceSoon(); break;
    case 'member.removed':
      // Our own removal: the server closes the socket with 4003 next; nothing left to load.
      if (S.me && (data.user_id === S.me.id || data.id === S.me.id)) break;
      void loadMembers(); break;
    case 'member.added': case 'member.role_changed':
      if (typeof data.user_id === 'string' && typeof data.name === 'string') S.names.set(data.user_id, data.name);
      void loadMembers(); break;
    case 'export.created': case 'export.progress': case 'export.completed': case 'export.failed':
      upsertExport(data, true); break;
    case 'workspace.updated':
      if (S.ws && data.name) {
        S.ws.name = data.name;
        if (typeof data.description === 'string') S.ws.description = data.description;
        renderWorkspaces();
      }
      break;
    default: break;
  }
}

$('ws-connect').addEventListener('click', () => {
  if (!S.ws) return;
  reconnectNow();
});
$('ws-disconnect').addEventListener('click', () => disconnect('by you'));
window.addEventListener('online', () => { if (live.state === 'reconnecting') reconnectNow(); });
// Leaving the page ends the subscription quietly; a page restored from the back-forward cache connects again.
let reconnectOnShow = false;
window.addEventListener('pagehide', () => {
  const sub = live.sub;
  if (!sub) return;
  live.sub = null;
  live.state = 'idle';
  reconnectOnShow = true;
  void sub.close();
});
window.addEventListener('pageshow', (event) => {
  if (!event.persisted || !reconnectOnShow) return;
  reconnectOnShow = false;
  connect();
});

// ---------- start ----------
renderWorkspaceInfo();
renderTaskCount();
// A reload of the tab: the session (tokens, e-mail, workspace) is in sessionStorage.
(async () => {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null'); } catch { /* ignore */ }
  if (!saved || !saved.tokens || typeof saved.tokens.access_token !== 'string' || !saved.tokens.refresh_token) return;
  const tokens = { access_token: saved.tokens.access_token, refresh_token: saved.tokens.refresh_token };
  const client = createClient(tokens, saved.email || '');
  S.client = client;
  S.tokens = tokens;
  const claims = decodeJwt(tokens.access_token);
  S.me = { id: claims.sub, name: claims.name || '', role: claims.role || 'user', email: saved.email || '' };
  $('auth-email').value = saved.email || '';
  // An access token that expired (or is about to) while the page was away is refreshed first.
  try { await client.accessToken(); }
  catch (error) {
    if (S.client !== client) return; // refused: the session ended (and said so)
    showError(error, 'Restoring the session');
  }
  if (S.client !== client) return;
  scheduleRefresh();
  await startSession(linkedWorkspace || saved.workspace_id || null);
})().catch((error) => showError(error, 'Restoring the session'));
