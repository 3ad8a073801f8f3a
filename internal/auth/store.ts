import type { Sql, TransactionSql } from "../platform/postgres.js";
import { rowToMessage } from "../../api/contracts/shape.js";
import { User as UserContract } from "../../api/contracts/user.js";
import type { User } from "../../api/gen/taskboard/auth/v1/auth.js";

export interface UserRow {
  id: string;
  seq: string;
  name: string;
  email: string;
  password_hash: string;
  role: "user" | "admin";
  email_notifications: boolean;
  created_at: Date;
}

export interface NewUser {
  id: string;
  name: string;
  email: string;
  password_hash: string;
  role: "user" | "admin";
}

export interface UserChanges {
  name?: string | undefined;
  email?: string | undefined;
  password_hash?: string | undefined;
  email_notifications?: boolean | undefined;
  role?: "user" | "admin" | undefined;
}

/** The public shape of a user (never the password hash). */
/** A row as the service message: the contract's fields (never the password hash). */
export const toUser: (row: UserRow) => User = rowToMessage<User>(UserContract);

/** SQL over auth.users. */
export class UserStore {
  constructor(private readonly sql: Sql) {}

  async insert(tx: TransactionSql, user: NewUser): Promise<UserRow> {
    const [row] = await tx<UserRow[]>`insert into auth.users ${tx(user)} returning *`;
    return row!;
  }

  async byId(id: string, tx: Sql | TransactionSql = this.sql): Promise<UserRow | undefined> {
    const [row] = await tx<UserRow[]>`select * from auth.users where id = ${id}`;
    return row;
  }

  async byEmail(email: string): Promise<UserRow | undefined> {
    const [row] = await this.sql<UserRow[]>`select * from auth.users where lower(email) = lower(${email})`;
    return row;
  }

  async byIdsOrEmails(ids: string[], emails: string[]): Promise<UserRow[]> {
    return this.sql<UserRow[]>`
      select * from auth.users
      where id = any(${ids}::uuid[]) or lower(email) = any(${emails.map((e) => e.toLowerCase())}::text[])
      order by seq`;
  }

  /** `limit + 1` users after `after` (a seq), oldest first. */
  async page(after: string | undefined, limit: number): Promise<UserRow[]> {
    return this.sql<UserRow[]>`
      select * from auth.users where seq > ${after ?? "0"}::bigint order by seq limit ${limit + 1}`;
  }

  async update(tx: TransactionSql, id: string, changes: UserChanges): Promise<UserRow | undefined> {
    const set = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    if (Object.keys(set).length === 0) return this.byId(id, tx);
    const [row] = await tx<UserRow[]>`
      update auth.users set ${tx(set)}, updated_at = now() where id = ${id} returning *`;
    return row;
  }

  async delete(tx: TransactionSql, id: string): Promise<boolean> {
    const rows = await tx`delete from auth.users where id = ${id} returning id`;
    return rows.length > 0;
  }
}
