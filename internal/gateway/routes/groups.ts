import { DEFAULT_PAGE_SIZE } from "../../../api/contracts/fields.js";
import { Broadcast, Event, EventList, GroupMessagesQuery } from "../../../api/contracts/event.js";
import { CreateGroup, Group, GroupList } from "../../../api/contracts/group.js";
import { decodeCursor } from "../../platform/cursor.js";
import { forbidden, notFound } from "../../platform/errors.js";
import type { Subjects } from "../../platform/events.js";
import { readEventPage } from "../event-pages.js";
import { requireRole } from "../membership.js";
import { presentGroup } from "../presenters.js";
import type { EventPublisher } from "../realtime/publisher.js";
import type { StartAt, StreamReader } from "../realtime/stream-reader.js";
import { json, noContent, route, type Route } from "../router.js";
import { onBehalfOf, type Services } from "../services.js";
import { streamPosition } from "./realtime.js";

/** How far back a group's history reaches (API.md: 7 days). */
const HISTORY_MS = 7 * 24 * 3600 * 1000;

export interface GroupRouteDeps {
  services: Services;
  subjects: Subjects;
  reader: StreamReader;
  publisher: EventPublisher;
}

/** Groups inside a workspace (API.md "Groups"): the workspace service keeps them, the rooms deliver their messages. */
export function groupRoutes({ services, subjects, reader, publisher }: GroupRouteDeps): Route[] {
  const workspace = services.workspace;
  const ref = (params: Record<string, string>) => ({ workspace_id: params["workspace_id"]!, group_id: params["group_id"]! });
  /** The group as the caller may see it: 404 when it does not exist (or, for a plain member, is not theirs). */
  const visibleGroup = async (ctx: Parameters<typeof onBehalfOf>[0] & { params: Record<string, string> }) => {
    const { items } = await workspace.call("listGroups", { workspace_id: ctx.params["workspace_id"]! }, onBehalfOf(ctx));
    const group = items.find((g) => g.id === ctx.params["group_id"]);
    if (!group) throw notFound("group");
    return group;
  };
  return [
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/groups",
      auth: "user",
      body: CreateGroup,
      doc: {
        operationId: "createGroup",
        summary: "Create a group",
        description: "Who: owner, admin. Names are unique in a workspace (409); at most 100 groups (422). Publishes `group.created`.",
        tag: "Groups",
        ok: { status: 201, description: "The new group (no members yet).", schema: Group },
        errors: [409, 422],
      },
      handle: async (ctx) =>
        json(201, presentGroup(await workspace.call("createGroup", { workspace_id: ctx.params.workspace_id!, name: ctx.body.name }, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/groups",
      auth: "user",
      doc: {
        operationId: "listGroups",
        summary: "List groups",
        description: "Who: member. Owners and admins see every group; members the groups they belong to.",
        tag: "Groups",
        ok: { status: 200, description: "The groups, oldest first.", schema: GroupList },
      },
      handle: async (ctx) => {
        const { items } = await workspace.call("listGroups", { workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx));
        return json(200, { items: items.map(presentGroup) });
      },
    }),
    route({
      method: "delete",
      path: "/workspaces/{workspace_id}/groups/{group_id}",
      auth: "user",
      doc: {
        operationId: "deleteGroup",
        summary: "Delete a group",
        description: "Who: owner, admin. Publishes `group.deleted`.",
        tag: "Groups",
        ok: { status: 204, description: "The group is deleted." },
      },
      handle: async (ctx) => {
        await workspace.call("deleteGroup", ref(ctx.params), onBehalfOf(ctx));
        return noContent();
      },
    }),
    ...(["put", "delete"] as const).map((method) =>
      route({
        method,
        path: "/workspaces/{workspace_id}/groups/{group_id}/members/{user_id}",
        auth: "user",
        doc: {
          operationId: method === "put" ? "addGroupMember" : "removeGroupMember",
          summary: method === "put" ? "Add a member to a group" : "Remove a member from a group",
          description:
            "Who: owner, admin. The user must be a member of the workspace (422). Idempotent; a change publishes `group.member_added` / `group.member_removed` with the group as `data`. A removed member receives none of the group's later messages.",
          tag: "Groups",
          ok: { status: 204, description: "Done." },
          errors: [422],
        },
        handle: async (ctx) => {
          const request = { ...ref(ctx.params), user_id: ctx.params.user_id! };
          await workspace.call(method === "put" ? "addGroupMember" : "removeGroupMember", request, onBehalfOf(ctx));
          return noContent();
        },
      }),
    ),
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/groups/{group_id}/broadcast",
      auth: "user",
      body: Broadcast,
      doc: {
        operationId: "broadcastToGroup",
        summary: "Broadcast a message to a group",
        description: "Who: owner, admin. Delivered as a `custom.message` event with `group_id` to the group's members only.",
        tag: "Groups",
        ok: { status: 202, description: "The published event.", schema: Event },
      },
      handle: async (ctx) => {
        const workspaceId = ctx.params.workspace_id!;
        await requireRole(services, ctx, workspaceId, ["owner", "admin"]);
        const group = await visibleGroup(ctx);
        const event = await publisher.publish({
          type: "custom.message",
          workspace_id: workspaceId,
          group_id: group.id,
          user_id: ctx.caller.userId,
          aggregate_id: group.id,
          data: { content: ctx.body.content, broadcast: true },
        });
        return json(202, event);
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/groups/{group_id}/messages",
      auth: "user",
      query: GroupMessagesQuery,
      doc: {
        operationId: "listGroupMessages",
        summary: "A group's messages of the last 7 days",
        description: "Who: the group's members (403 for an owner or admin outside it). Oldest first, each with its stream `seq`; `since` an RFC 3339 time or a `seq`.",
        tag: "Groups",
        ok: { status: 200, description: "A page of messages.", schema: EventList },
      },
      handle: async (ctx) => {
        const group = await visibleGroup(ctx);
        if (!group.member_ids.includes(ctx.caller.userId)) throw forbidden("only the group's members read its messages");
        const { since, cursor } = ctx.query;
        const oldest = Date.now() - HISTORY_MS;
        const start: StartAt = cursor
          ? { afterSeq: streamPosition(decodeCursor(cursor)) }
          : since && !("time" in since && since.time.getTime() < oldest)
            ? since
            : { time: new Date(oldest) };
        const page = await readEventPage(reader, subjects.group(group.workspace_id, group.id), start, ctx.query.limit ?? DEFAULT_PAGE_SIZE, (event) =>
          Number(event.timestamp) >= oldest,
        );
        return json(200, page);
      },
    }),
  ];
}
