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
