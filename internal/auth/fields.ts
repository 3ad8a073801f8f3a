import { z } from "zod";
import { fields } from "../platform/validate.js";
import { passwordProblem } from "./password-policy.js";

/** User fields, shared by the gateway's request schemas and the auth service's own checks. */
export const userFields = {
  name: fields.text("name", 100),
  email: z
    .email("email must be a valid e-mail address")
    .max(254, "email must be at most 254 characters")
    .transform((v) => v.toLowerCase()),
  password: z.string("password must be a string").superRefine((value, ctx) => {
    const problem = passwordProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }),
  role: z.enum(["user", "admin"], "role must be user or admin"),
  email_notifications: z.boolean("email_notifications must be true or false"),
};
