import type { Principal } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import type { AppContext } from '../http/context.js';
import { createSession } from './sessions.js';
import { deriveTotpKey, openTotpSecret, verifyTotp } from './totp.js';
import { authenticate } from './users.js';

/**
 * R12.1: an operator who enrolled TOTP must give a fresh code (a step is never accepted twice);
 * with HOKAN_OPERATOR_TOTP=required an operator without TOTP cannot sign in at all.
 */
async function checkOperatorSecondFactor(ctx: AppContext, userId: string, code: string | undefined): Promise<void> {
  const row = await ctx.db.selectFrom('users').select(['totp_secret', 'totp_last_step']).where('id', '=', userId).executeTakeFirstOrThrow();
  if (!row.totp_secret) {
    if (ctx.gateway?.settings.operatorTotpRequired) {
      throw new HokanError('invalid_credentials', bi('二要素認証（TOTP）の登録が必要です。管理者に `hokan operator totp` での登録を依頼してください。', 'A TOTP second factor is required; ask an admin to enrol you with `hokan operator totp`.'), [{ path: 'totpCode', message: 'enrolment required' }]);
    }
    return;
  }
  if (!code) throw new HokanError('invalid_credentials', bi('認証アプリのコードを入力してください。', 'Enter the code from your authenticator app.'), [{ path: 'totpCode', message: 'required' }]);
  const secret = openTotpSecret(totpSealKey(ctx), row.totp_secret, userId);
  const last = row.totp_last_step === null ? undefined : Number(row.totp_last_step);
  const check = verifyTotp(secret, code, ctx.clock.now(), last);
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
    principal = await authenticate(ctx.db, input.loginId, input.password);
    if (principal.kind === 'operator') await checkOperatorSecondFactor(ctx, principal.userId, input.totpCode);
  } catch (err) {
    const findings = misuse?.recordSignIn(input.loginId, ip, false) ?? [];
    if (findings.length) await ctx.gateway?.applyMisuseFindings(findings);
    throw err;
  }
  misuse?.recordSignIn(input.loginId, ip, true);
  if (principal.kind === 'api_token') throw errors.invalidCredentials();
  const session = await createSession(ctx.db, ctx.clock, principal.userId, ctx.config.sessionTtlHours);
  return { principal, session };
}
