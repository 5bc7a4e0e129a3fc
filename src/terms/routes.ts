import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf, canAccessCustomer, isCustomerAdminOf, requireOperatorRole, type Principal } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { calendarDate, humanPrincipal, instant, note, principalOf, router, uuid } from '../http/route-kit.js';
import { addConsultationMessage, closeConsultation, findConsultation, listConsultations, openConsultation, type ConsultationView } from './consultations.js';
import { createNotice, deleteNotice, getNotice, listNotices, NOTICE_CHANNELS, noticesForCustomer, publishNotice, updateNotice, type NoticeInput, type Viewer } from './notices.js';
import { CHANGE_KINDS, notificationRecordsFor } from './notifications.js';
import { governingText } from './precedence.js';
import { NAMED_TOPICS } from './topics.js';
import { diffTermsVersions, getTermsVersion, importTermsVersion, listTermsVersions, publishTermsVersion } from './versions.js';

const versionParams = z.object({ versionId: uuid });
const noticeParams = z.object({ termsNoticeId: uuid });
const customerParams = z.object({ customerId: uuid });
const consultationParams = z.object({ consultationId: uuid });
const message = z.string().trim().min(1, { error: 'must not be empty' }).max(10_000);
const oneLine = (max: number) => z.string().trim().min(1, { error: 'must not be empty' }).max(max).refine((s) => !/[\r\n]/.test(s), { error: 'must be one line' });

const noticeBody = z.object({
  channel: z.enum(NOTICE_CHANNELS),
  guideEdition: oneLine(40).nullable().optional().describe('the Support Guide edition (channel support_guide only)'),
  topic: z.string().trim().min(1).max(100).describe('article:N, article:N.P, 第N条, 第N条第P項, or a named topic (GET /terms/topics)'),
  titleJa: oneLine(200),
  bodyJa: z.string().trim().min(1, { error: 'must not be empty' }).max(20_000),
  titleEn: oneLine(200).nullable().optional(),
  bodyEn: z.string().trim().min(1).max(20_000).nullable().optional(),
  effectiveAt: instant,
  customerIds: z.array(uuid).min(1).max(10_000).optional().describe('omit to address every customer'),
});

function noticeInput(b: z.infer<typeof noticeBody>): NoticeInput {
  return {
    channel: b.channel,
    guideEdition: b.guideEdition ?? null,
    topic: b.topic,
    titleJa: b.titleJa,
    bodyJa: b.bodyJa,
    titleEn: b.titleEn ?? null,
    bodyEn: b.bodyEn ?? null,
    effectiveAt: new Date(b.effectiveAt),
    ...(b.customerIds ? { customerIds: b.customerIds } : {}),
  };
}

export function registerTermsRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const operatorWrite = (p: Principal) => requireOperatorRole(p, 'admin', 'operator');
  const viewer = (p: Principal): Viewer => (p.kind === 'operator' ? { kind: 'operator' } : { kind: 'customer', customerId: p.customerId });

  async function visibleConsultation(p: Principal, id: string): Promise<ConsultationView> {
    const c = await findConsultation(ctx.db, id);
    if (!c || !canAccessCustomer(p, c.customerId)) throw errors.notFound('協議 / consultation', id);
    return c;
  }

  // R1.1 terms versions
  r.get('/terms/versions', { schema: { tags: ['terms'], summary: 'Terms versions with edition, effective date and 附則 history (R1.1); operators also see drafts' } }, async (req) => {
    const p = principalOf(req);
    return { versions: await listTermsVersions(ctx.db, { includeDrafts: p.kind === 'operator' }) };
  });

  r.get('/terms/versions/:versionId', { schema: { tags: ['terms'], summary: 'One terms version with its structured content (articles, paragraphs, items)', params: versionParams } }, async (req) => {
    const p = principalOf(req);
    return { version: await getTermsVersion(ctx.db, req.params.versionId, { includeDrafts: p.kind === 'operator' }) };
  });

  r.post('/terms/versions', {
    schema: {
      tags: ['terms'],
      summary: 'Import a terms document as a draft version (R1.1); parse errors name the line',
      body: z.object({ edition: oneLine(40), effectiveDate: calendarDate, text: z.string().max(512 * 1024) }),
    },
  }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    const result = await importTermsVersion(ctx.db, ctx.clock, actorOf(p), req.body);
    return reply.code(201).send(result);
  });

  r.post('/terms/versions/:versionId/publish', {
    schema: { tags: ['terms'], summary: 'Publish a draft version: immutable from then on, shown on the portal and e-mailed to every customer under contract (R2.1)', params: versionParams, body: z.object({}) },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    const { version, notified } = await publishTermsVersion(ctx.db, ctx.clock, actorOf(p), req.params.versionId);
    return { version, notified: { customers: notified.customers, emails: notified.emails, skipped: notified.skipped.length } };
  });

  r.get('/terms/diff', {
    schema: { tags: ['terms'], summary: 'Differences between two versions, per article: added, removed, changed with a line and character diff', querystring: z.object({ from: uuid, to: uuid }) },
  }, async (req) => {
    const p = principalOf(req);
    return { diff: await diffTermsVersions(ctx.db, req.query.from, req.query.to, { includeDrafts: p.kind === 'operator' }) };
  });

  r.get('/terms/topics', { schema: { tags: ['terms'], summary: 'Topics notices may address: articles of the newest published version and the named topics' } }, async () => {
    const newest = (await listTermsVersions(ctx.db))[0];
    const doc = newest ? (await getTermsVersion(ctx.db, newest.id)).document : null;
    return {
      articles: doc ? doc.articles.map((a) => ({ topic: `article:${a.number}`, heading: a.heading, paragraphs: a.paragraphs.map((x) => `article:${a.number}.${x.number}`) })) : [],
      named: Object.entries(NAMED_TOPICS).map(([topic, label]) => ({ topic, label })),
    };
  });

  // R1.3 precedence
  r.get('/terms/governing', {
    schema: {
      tags: ['terms'],
      summary: 'Which text governs a topic for a customer at a time (R1.3): the terms in force, overridden by notices, the later notified prevailing; with the chain of sources and reasons',
      querystring: z.object({ topic: z.string().trim().min(1).max(100), customerId: uuid.optional().describe('required for operators; customers ask for themselves'), at: instant.optional().describe('default: now') }),
    },
  }, async (req) => {
    const p = principalOf(req);
    const customerId = req.query.customerId ?? (p.kind === 'operator' ? undefined : p.customerId);
    if (!customerId) throw errors.invalidField('customerId', 'お客様を指定してください。', 'required for operators');
    if (!canAccessCustomer(p, customerId)) throw errors.notFound('お客様 / customer', customerId);
    return { answer: await governingText(ctx.db, { topic: req.query.topic, customerId, at: req.query.at ? new Date(req.query.at) : ctx.clock.now() }) };
  });

  // R1.2 notices
  r.get('/terms/notices', {
    schema: { tags: ['terms'], summary: 'Notices (お知らせ): operators see all, customers the published ones addressed to them', querystring: z.object({ state: z.enum(['draft', 'published']).optional() }) },
  }, async (req) => {
    const p = principalOf(req);
    if (p.kind === 'operator') return { notices: await listNotices(ctx.db, req.query.state ? { state: req.query.state } : {}) };
    return { notices: req.query.state === 'draft' ? [] : await noticesForCustomer(ctx.db, p.customerId) };
  });

  r.get('/terms/notices/:termsNoticeId', { schema: { tags: ['terms'], summary: 'One notice', params: noticeParams } }, async (req) => {
    return { notice: await getNotice(ctx.db, req.params.termsNoticeId, viewer(principalOf(req))) };
  });

  r.post('/terms/notices', {
    schema: { tags: ['terms'], summary: 'Draft a notice on the support site or in a Support Guide edition, to all or chosen customers (R1.2)', body: noticeBody },
  }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    return reply.code(201).send({ notice: await createNotice(ctx.db, ctx.clock, actorOf(p), noticeInput(req.body)) });
  });

  r.put('/terms/notices/:termsNoticeId', { schema: { tags: ['terms'], summary: 'Edit a draft notice (a published one is immutable)', params: noticeParams, body: noticeBody } }, async (req) => {
    const p = operatorWrite(principalOf(req));
    return { notice: await updateNotice(ctx.db, ctx.clock, actorOf(p), req.params.termsNoticeId, noticeInput(req.body)) };
  });

  r.delete('/terms/notices/:termsNoticeId', { schema: { tags: ['terms'], summary: 'Delete a draft notice', params: noticeParams } }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    await deleteNotice(ctx.db, ctx.clock, actorOf(p), req.params.termsNoticeId);
    return reply.code(204).send();
  });

  r.post('/terms/notices/:termsNoticeId/publish', {
    schema: { tags: ['terms'], summary: 'Publish a notice: immutable from then on, shown on the portal and e-mailed to its addressees (R2.1)', params: noticeParams, body: z.object({}) },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    const { notice, notified } = await publishNotice(ctx.db, ctx.clock, actorOf(p), req.params.termsNoticeId);
    return { notice, notified: { customers: notified.customers, emails: notified.emails, skipped: notified.skipped.length } };
  });

  // R2.1 notification records
  r.get('/customers/:customerId/terms-notifications', {
    schema: {
      tags: ['terms'],
      summary: 'When and how each change (terms version or notice) was notified to the customer (R2.1): portal display, e-mails queued and sent',
      params: customerParams,
      querystring: z.object({ changeKind: z.enum(CHANGE_KINDS).optional(), changeId: uuid.optional() }),
    },
  }, async (req) => {
    const p = principalOf(req);
    if (!canAccessCustomer(p, req.params.customerId)) throw errors.notFound('お客様 / customer', req.params.customerId);
    return { records: await notificationRecordsFor(ctx.db, req.params.customerId, { ...(req.query.changeKind ? { changeKind: req.query.changeKind } : {}), ...(req.query.changeId ? { changeId: req.query.changeId } : {}) }) };
  });

  // R2.2 consultations
  r.get('/customers/:customerId/consultations', { schema: { tags: ['terms'], summary: "The customer's consultations (協議) about changes it disagrees with", params: customerParams } }, async (req) => {
    const p = principalOf(req);
    if (!canAccessCustomer(p, req.params.customerId)) throw errors.notFound('お客様 / customer', req.params.customerId);
    return { consultations: await listConsultations(ctx.db, { customerId: req.params.customerId }) };
  });

  r.get('/consultations', { schema: { tags: ['terms'], summary: 'Consultations: operators see all, customers their own', querystring: z.object({ state: z.enum(['open', 'closed']).optional() }) } }, async (req) => {
    const p = principalOf(req);
    return { consultations: await listConsultations(ctx.db, { ...(p.kind === 'operator' ? {} : { customerId: p.customerId }), ...(req.query.state ? { state: req.query.state } : {}) }) };
  });

  r.post('/customers/:customerId/consultations', {
    schema: {
      tags: ['terms'],
      summary: 'A customer admin registers disagreement with a change, which opens a consultation (R2.2)',
      params: customerParams,
      body: z.object({ changeKind: z.enum(CHANGE_KINDS), changeId: uuid, message }),
    },
  }, async (req, reply) => {
    const p = humanPrincipal(req);
    if (!canAccessCustomer(p, req.params.customerId)) throw errors.notFound('お客様 / customer', req.params.customerId);
    if (!isCustomerAdminOf(p, req.params.customerId)) throw errors.forbidden("only the customer's admins can register disagreement", 'お客様の管理者のみが申し出ることができます');
    const consultation = await openConsultation(ctx.db, ctx.clock, actorOf(p), { customerId: req.params.customerId, changeKind: req.body.changeKind, changeId: req.body.changeId, message: req.body.message });
    return reply.code(201).send({ consultation });
  });

  r.get('/consultations/:consultationId', { schema: { tags: ['terms'], summary: 'One consultation with its messages', params: consultationParams } }, async (req) => {
    return { consultation: await visibleConsultation(principalOf(req), req.params.consultationId) };
  });

  r.post('/consultations/:consultationId/messages', {
    schema: { tags: ['terms'], summary: "A message in an open consultation: the customer's admin, or an operator's reply", params: consultationParams, body: z.object({ message }) },
  }, async (req) => {
    const p = humanPrincipal(req);
    const c = await visibleConsultation(p, req.params.consultationId);
    if (p.kind === 'operator') requireOperatorRole(p, 'admin', 'operator', 'support');
    else if (!isCustomerAdminOf(p, c.customerId)) throw errors.forbidden("only the customer's admins take part in the consultation", '協議にはお客様の管理者が参加します');
    return { consultation: await addConsultationMessage(ctx.db, ctx.clock, actorOf(p), c.id, req.body.message) };
  });

  r.post('/consultations/:consultationId/close', {
    schema: { tags: ['terms'], summary: 'Close a consultation with its outcome (operator)', params: consultationParams, body: z.object({ note }) },
  }, async (req) => {
    const p = principalOf(req);
    await visibleConsultation(p, req.params.consultationId);
    const op = requireOperatorRole(p, 'admin', 'operator', 'support');
    return { consultation: await closeConsultation(ctx.db, ctx.clock, actorOf(op), req.params.consultationId, req.body.note) };
  });
}
