import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromDatabaseError } from '../../src/http/error-handler.js';
import { HokanError } from '../../src/core/errors.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';

/** A database error as pg and the embedded database report it. */
const dbError = (fields: { code: string; constraint?: string; detail?: string }) => Object.assign(new Error('duplicate key value violates unique constraint'), fields);

describe('fromDatabaseError', () => {
  it('a unique violation on a known constraint is a 409 duplicate naming the field, without SQL', () => {
    const e = fromDatabaseError(dbError({ code: '23505', constraint: 'users_login_id_key', detail: 'Key (login_id)=(taro) already exists.' }));
    expect(e).toBeInstanceOf(HokanError);
    expect(e?.httpStatus).toBe(409);
    expect(e?.code).toBe('duplicate');
    expect(e?.details).toEqual([{ path: 'loginId', message: 'already in use' }]);
    expect(JSON.stringify(e?.toJSON())).not.toMatch(/login_id|taro|Key \(|constraint/);
  });

  it('any other unique violation is a generic 409 conflict in both languages', () => {
    const e = fromDatabaseError(dbError({ code: '23505', constraint: 'notice_posts_incident_stage_idx', detail: 'Key (incident_id, stage)=(…) already exists.' }));
    expect(e?.httpStatus).toBe(409);
    expect(e?.code).toBe('conflict');
    expect(e?.details).toEqual([]);
    expect(e?.messages.ja).toMatch(/もう一度/);
    expect(e?.messages.en).toMatch(/try again/);
    expect(JSON.stringify(e?.toJSON())).not.toMatch(/notice_posts|incident_id|Key \(/);
    expect(fromDatabaseError(dbError({ code: '23505', constraint: 'constructor' }))?.code).toBe('conflict');
  });

  it('other errors are left to the error handler as they are', () => {
    expect(fromDatabaseError(dbError({ code: '23503', constraint: 'contracts_customer_id_fkey' }))).toBeNull();
    expect(fromDatabaseError(new Error('boom'))).toBeNull();
    expect(fromDatabaseError('23505')).toBeNull();
  });
});

describe.each(databaseKinds)('a unique violation that wins the race with the check, through the real routes on %s', (kind) => {
  let app: TestApp;
  let ops: string;
  let customerId: string;

  beforeAll(async () => {
    app = await startTestApp(kind);
    await addOperator(app, 'race-ops', ['admin', 'operator']);
    ops = await app.signIn('race-ops');
    customerId = (await addCustomerWithContract(app, 'race')).customer.id;
    // Plays the concurrent request: between the route's check and its insert, a twin row with the
    // same unique value commits first (on PostgreSQL two requests really interleave like this; the
    // embedded database runs one transaction at a time, so the trigger stands in for the other).
    await sql`
      create function test_race_twin() returns trigger language plpgsql as $$
      begin
        if pg_trigger_depth() = 1 and new.login_id like 'race-twin-%' then
          insert into users (id, kind, customer_id, login_id, display_name, email, roles, password_hash, disabled_at, created_at)
          values (gen_random_uuid(), new.kind, new.customer_id, new.login_id, 'twin', new.email, new.roles, new.password_hash, null, new.created_at);
        end if;
        return new;
      end $$`.execute(app.ctx.db);
    await sql`create trigger test_race_twin before insert on users for each row execute function test_race_twin()`.execute(app.ctx.db);
    await sql`
      create function test_race_contract() returns trigger language plpgsql as $$
      begin
        if pg_trigger_depth() = 1 and new.contract_number like 'C-RACE-%' then
          insert into contracts select (jsonb_populate_record(null::contracts, to_jsonb(new) || jsonb_build_object('id', gen_random_uuid()))).*;
        end if;
        return new;
      end $$`.execute(app.ctx.db);
    await sql`create trigger test_race_contract before insert on contracts for each row execute function test_race_contract()`.execute(app.ctx.db);
  });
  afterAll(async () => app?.close());

  it('R18.1 creating a customer user whose ID another request took a moment earlier is a 409 naming loginId, not a 500', async () => {
    const res = await app.request({
      method: 'POST',
      url: `/api/v1/customers/${customerId}/users`,
      cookie: ops,
      payload: { loginId: 'race-twin-1', displayName: '競合', email: 'race@customer.example.jp', role: 'member', password: 'a long enough initial password' },
    });
    expect(res.statusCode).toBe(409);
    const body = res.json();
    expect(body.error.code).toBe('duplicate');
    expect(body.error.details).toEqual([{ path: 'loginId', message: 'already in use' }]);
    expect(body.error.message.ja).toBe('このIDは既に使われています。');
    expect(body.error.message.en).toBe('This ID is already in use.');
    expect(res.body).not.toMatch(/login_id|users_|Key \(|race-twin-1/);
    // The losing request left nothing half-done (the stand-in twin went with its transaction here).
    expect(await app.ctx.db.selectFrom('users').select('id').where('login_id', '=', 'race-twin-1').execute()).toEqual([]);
  });

  it('R21.1 concluding a contract whose number another request took a moment earlier is a 409 naming contractNumber', async () => {
    const res = await app.request({
      method: 'POST',
      url: `/api/v1/customers/${customerId}/contracts`,
      cookie: ops,
      payload: { contractNumber: 'C-RACE-1', termStart: '2026-04-01', termEnd: '2027-03-31', systemUseContractNumber: 'SU-RACE-1', supportContractNumber: 'SP-RACE-1' },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('duplicate');
    expect(res.json().error.details).toEqual([{ path: 'contractNumber', message: 'already in use' }]);
    expect(res.body).not.toMatch(/contract_number|contracts_|Key \(/);
  });

  it('other unhandled errors still answer 500 without detail', async () => {
    await sql`create function test_boom() returns trigger language plpgsql as $$ begin if new.login_id = 'boom-user' then raise exception 'secret detail'; end if; return new; end $$`.execute(app.ctx.db);
    await sql`create trigger test_boom before insert on users for each row execute function test_boom()`.execute(app.ctx.db);
    const res = await app.request({
      method: 'POST',
      url: `/api/v1/customers/${customerId}/users`,
      cookie: ops,
      payload: { loginId: 'boom-user', displayName: '失敗', email: 'boom@customer.example.jp', role: 'member', password: 'a long enough initial password' },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe('internal');
    expect(res.body).not.toContain('secret detail');
  });
});
