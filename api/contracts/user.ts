import { z } from "zod";
import { field, out, pageOf, partialUpdate } from "./fields.js";

/** Users and tokens (API.md "Authentication", "Users"): resources and inputs, defined once (see task.ts). */

export const PASSWORD_MIN_LENGTH = 8;
/** argon2 accepts more, but nobody types more; bounds the hashing cost. */
export const PASSWORD_MAX_LENGTH = 256;

/** Why a password breaks the policy (API.md: 8+ characters, an upper-case letter, a digit), or undefined. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < PASSWORD_MIN_LENGTH) return `password must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (password.length > PASSWORD_MAX_LENGTH) return `password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  if (!/\p{Lu}/u.test(password)) return "password must contain an upper-case letter";
  if (!/\p{Nd}/u.test(password)) return "password must contain a digit";
  return undefined;
}

export const UserRole = z.enum(["user", "admin"], "role must be user or admin").meta({ id: "UserRole" });

const writable = {
  name: field.text("name", 100),
  email: z
    .email("email must be a valid e-mail address")
    .max(254, "email must be at most 254 characters")
    .transform((v) => v.toLowerCase()),
  password: z
    .string("password must be a string")
    .superRefine((value, ctx) => {
      const problem = passwordProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .meta({
      id: "Password",
      description: `${PASSWORD_MIN_LENGTH}–${PASSWORD_MAX_LENGTH} characters with an upper-case letter and a digit.`,
      minLength: PASSWORD_MIN_LENGTH,
      maxLength: PASSWORD_MAX_LENGTH,
    }),
  role: UserRole,
  email_notifications: z.boolean("email_notifications must be true or false"),
};
export const userFields = writable;

export const User = z
  .object({
    id: out.id(),
    name: z.string(),
    email: z.email(),
    role: UserRole,
    email_notifications: z.boolean(),
    created_at: out.time(),
  })
  .meta({ id: "User" });
export type User = z.output<typeof User>;

export const UserList = pageOf(User, "UserList");

export const Register = z
  .strictObject({ name: writable.name, email: writable.email, password: writable.password })
  .meta({ id: "RegisterRequest" });

/** An administrator's create: a registration with a role. */
export const CreateUser = Register.extend({ role: writable.role.optional() }).meta({ id: "CreateUserRequest" });

export const UpdateUser = partialUpdate(
  {
    name: writable.name.optional(),
    email: writable.email.optional(),
    password: writable.password.optional(),
    email_notifications: writable.email_notifications.optional(),
    role: writable.role.optional(),
  },
  "UpdateUserRequest",
);

export const PasswordResetRequest = z.strictObject({ email: writable.email }).meta({ id: "PasswordResetRequest" });

export const PasswordResetConfirmation = z
  .strictObject({
    token: z.string("token must be a string").min(1, "token is required").max(200, "token is too long"),
    password: writable.password,
  })
  .meta({ id: "PasswordResetConfirmation" });

/** What a password-reset request answers, for every address alike. */
export const PasswordResetAccepted = z
  .object({ message: z.string() })
  .meta({ id: "PasswordResetAccepted" });

/** What one-click unsubscribe answers. */
export const Unsubscribed = z.object({ email_notifications: z.literal(false) }).meta({ id: "Unsubscribed" });

export const UnsubscribeQuery = z.strictObject({
  token: z.string("token must be a string").min(1, "token is required").max(200, "token is too long"),
});

/** Login checks lengths only: the policy of the day must not lock out an older password. */
export const Login = z
  .strictObject({
    email: z.string("email must be a string").min(1, "email is required").max(254, "email is too long"),
    password: z.string("password must be a string").min(1, "password is required").max(1024, "password is too long"),
  })
  .meta({ id: "LoginRequest" });

export const RefreshToken = z
  .strictObject({
    refresh_token: z.string("refresh_token must be a string").min(1, "refresh_token is required").max(512, "refresh_token is too long"),
  })
  .meta({ id: "RefreshRequest" });

export const TokenPair = z
  .object({
    access_token: z.string(),
    refresh_token: z.string(),
    expires_in: z.int().min(1).meta({ description: "Seconds until the access token expires." }),
    token_type: z.literal("Bearer"),
  })
  .meta({ id: "TokenPair" });
