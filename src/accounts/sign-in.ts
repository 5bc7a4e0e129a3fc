import type { Principal } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import type { AppContext } from '../http/context.js';
import { createSession } from './sessions.js';
import { deriveTotpKey, openTotpSecret, verifyTotp } from './totp.js';
import { authenticate, type PasswordChecked } from './users.js';

/**
 * R12.1: an operator who enrolled TOTP must give a fresh code (a step is never accepted twice);
 * with HOKAN_OPERATOR_TOTP=required an operator without TOTP cannot sign in at all.
 *
 * Every refusal here is the same `invalid_credentials` a wrong password gets: an answer that said
 * "now the code" or "enrolment required" would tell whoever lacks the second factor that the
 * password was right, and the second factor would no longer protect the password.
 */
async function checkOperatorSecondFactor(ctx: AppContext, user: PasswordChecked, code: string | undefined): Promise<void> {
  const userId = user.principal.userId;
  if (!user.totpSecret) {
    if (ctx.gateway?.settings.operatorTotpRequired) {
      // The caller is not told why; the log tells an admin who is asked about it.
      ctx.logger.warn({ loginId: user.principal.loginId }, 'operator sign-in refused: TOTP enrolment required (hokan operator totp)');
      throw errors.invalidCredentials();
    }
    return;
  }
  if (!code) throw errors.invalidCredentials();
  const secret = openTotpSecret(totpSealKey(ctx), user.totpSecret, userId);
  const check = verifyTotp(secret, code, ctx.clock.now(), user.totpLastStep ?? undefined);
  if (!check.ok || check.step === undefined) throw errors.invalidCredentials();
  // Only if greater: two sign-ins racing with one code cannot both win.
  const won = await ctx.db
    .updateTable('users')
    .set({ totp_last_step: check.step })
    .where('id', '=', userId)
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', String(check.step))]))
    .executeTakeFirst();
  if (Number(won.numUpdatedRows) !== 1) throw errors.invalidCredentials();
}

/** TOTP secrets are sealed at rest with a key derived from the master key. */
const totpSealKey = (ctx: AppContext) => deriveTotpKey(ctx.backup.masterKey);

export interface SignInInput {
  loginId: string;
  password: string;
  totpCode?: string | undefined;
}

/**
 * One sign-in for the API and the web pages (R18.1, R12.1): lockout with back-off on repeated
 * failures (R11.1③), the operator's TOTP second factor, then a new session. A lockout is a
 * `too_many_attempts` error carrying `retryAfterSeconds`.
 */
export async function signIn(ctx: AppContext, input: SignInInput, ip: string): Promise<{ principal: Extract<Principal, { kind: 'operator' | 'customer_user' }>; session: { token: string; expiresAt: Date } }> {
  const misuse = ctx.gateway?.misuse;
  const gate = misuse?.beforeSignIn(input.loginId, ip);
  if (gate && !gate.allowed) {
    const seconds = Math.max(1, Math.ceil(gate.retryAfterMs / 1000));
    const err = new HokanError('too_many_attempts', bi(`サインインの失敗が続いたため、${seconds}秒間お待ちください。`, `Too many failed sign-ins; wait ${seconds} seconds before trying again.`));
    err.retryAfterSeconds = seconds;
    throw err;
  }
  let principal;
  try {
    const user = await authenticate(ctx.db, input.loginId, input.password);
    if (user.principal.kind === 'operator') await checkOperatorSecondFactor(ctx, user, input.totpCode);
    principal = user.principal;
  } catch (err) {
    // Every failure counts alike (R11.1③): were a missing code not counted, the lockout itself
    // would tell a right password from a wrong one.
    const findings = misuse?.recordSignIn(input.loginId, ip, false) ?? [];
    if (findings.length) await ctx.gateway?.applyMisuseFindings(findings);
    throw err;
  }
  misuse?.recordSignIn(input.loginId, ip, true);
  const session = await createSession(ctx.db, ctx.clock, principal.userId, ctx.config.sessionTtlHours);
  return { principal, session };
}
