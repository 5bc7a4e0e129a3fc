import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf, canAccessCustomer, hasOperatorRole, isCustomerAdminOf, requireOperatorRole, type Principal } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { findCustomer } from '../contracts/customers.js';
import type { AppContext } from '../http/context.js';
import { humanPrincipal, instant, principalOf, router, uuid } from '../http/route-kit.js';
import { COMPONENT_KEY_RE, createComponent, deleteComponent, listComponents, setIncidentComponents, setStopComponents, updateComponent } from './components.js';
import { addNoticeContact, listNoticeContacts, removeNoticeContact, updateNoticeContact } from './contacts.js';
import { deliveryKick } from './jobs.js';
import { listCustomerNotices, listIncidentNotices, postIncidentNotice, previewIncidentNotice, stopNoticeProof, type NoticeContext } from './notices.js';
import { INCIDENT_STAGES, type NoticeFields } from './templates.js';
import { createWebhook, deleteWebhook, listWebhookDeliveries, listWebhooks, setWebhookActive } from './webhooks.js';

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(max)
    .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), { error: 'must not contain control characters' });
const bilingual = (max: number) => z.object({ ja: text(max), en: text(max) });
const lang = z.enum(['ja', 'en']);
const contactBody = z.object({ email: z.string().max(320).describe('validated as a plain e-mail address'), name: z.string().trim().max(200).optional(), lang: lang.default('ja') });
const componentKey = z.string().regex(COMPONENT_KEY_RE, { error: '1–40 lower-case letters, digits or "-"' });
const componentKeys = z.object({ components: z.array(z.string().max(40)).max(100) });
export const noticeBody = z.object({
  stage: z.enum(INCIDENT_STAGES),
  details: bilingual(4000).optional(),
  nextUpdateAt: instant.optional(),
  recoveredAt: instant.optional(),
  cause: bilingual(4000).optional(),
  impact: bilingual(4000).optional(),
  timeline: z.array(z.object({ at: instant, ja: text(1000), en: text(1000) })).max(200).optional(),
  countermeasures: bilingual(4000).optional(),
});
type NoticeBody = z.infer<typeof noticeBody>;

export const fieldsOf = (b: NoticeBody): NoticeFields => ({
  details: b.details,
  nextUpdateAt: b.nextUpdateAt ? new Date(b.nextUpdateAt) : undefined,
  recoveredAt: b.recoveredAt ? new Date(b.recoveredAt) : undefined,
  cause: b.cause,
  impact: b.impact,
  timeline: b.timeline?.map((t) => ({ at: new Date(t.at), text: bi(t.ja, t.en) })),
  countermeasures: b.countermeasures,
});

/** R8.1: notice contacts, status components, incident notices, proof of notice, webhooks. */
export function registerNoticeRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const noticeCtx = (): NoticeContext => ({ providerName: ctx.config.providerName, publicUrl: ctx.config.publicUrl, kick: deliveryKick(ctx.queue) });
  const operatorWrite = (p: Principal) => requireOperatorRole(p, 'admin', 'operator');
  const customerParams = z.object({ customerId: uuid });
  const contactParams = z.object({ customerId: uuid, contactId: uuid });
  const incidentParams = z.object({ incidentId: uuid });

  /** Another customer's id is 404; within the customer, only its admins (and provider operators) manage contacts. */
  const contactManager = async (p: Principal, customerId: string) => {
    if (!canAccessCustomer(p, customerId) || !(await findCustomer(ctx.db, customerId))) throw errors.notFound('お客様 / customer', customerId);
    if (!hasOperatorRole(p, 'admin', 'operator', 'support') && !isCustomerAdminOf(p, customerId)) {
      throw errors.forbidden("requires the customer's admin or a provider operator", 'お客様の管理者または事業者の運用担当者の権限が必要です');
    }
  };
  const customerReader = async (p: Principal, customerId: string) => {
    if (!canAccessCustomer(p, customerId) || !(await findCustomer(ctx.db, customerId))) throw errors.notFound('お客様 / customer', customerId);
  };

  // --- contacts (R8.1) ---
  r.get('/customers/:customerId/notice-contacts', { schema: { tags: ['notices'], summary: "A customer's registered notice contacts (R8.1); its contact e-mail and admins receive notices too", params: customerParams } }, async (req) => {
    const p = principalOf(req);
    await contactManager(p, req.params.customerId);
    return { contacts: await listNoticeContacts(ctx.db, req.params.customerId) };
  });
  r.post('/customers/:customerId/notice-contacts', { schema: { tags: ['notices'], summary: 'Register a notice contact address with its language (R8.1)', params: customerParams, body: contactBody } }, async (req, reply) => {
    const p = humanPrincipal(req);
    await contactManager(p, req.params.customerId);
    return reply.code(201).send({ contact: await addNoticeContact(ctx.db, ctx.clock, actorOf(p), req.params.customerId, req.body) });
  });
  r.put('/customers/:customerId/notice-contacts/:contactId', { schema: { tags: ['notices'], summary: 'Change a notice contact', params: contactParams, body: contactBody } }, async (req) => {
    const p = humanPrincipal(req);
    await contactManager(p, req.params.customerId);
    return { contact: await updateNoticeContact(ctx.db, ctx.clock, actorOf(p), req.params.customerId, req.params.contactId, req.body) };
  });
  r.delete('/customers/:customerId/notice-contacts/:contactId', { schema: { tags: ['notices'], summary: 'Remove a notice contact', params: contactParams } }, async (req, reply) => {
    const p = humanPrincipal(req);
    await contactManager(p, req.params.customerId);
    await removeNoticeContact(ctx.db, ctx.clock, actorOf(p), req.params.customerId, req.params.contactId);
    return reply.code(204).send();
  });

  // --- status components ---
  r.get('/status-components', { schema: { tags: ['notices'], summary: 'The public components of the status page' } }, async (req) => {
    principalOf(req);
    return { components: await listComponents(ctx.db) };
  });
  r.post('/status-components', { schema: { tags: ['notices'], summary: 'Add a public component (operator)', body: z.object({ key: componentKey, name: bilingual(100), position: z.number().int().min(0).max(10_000).optional() }) } }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    const b = req.body;
    return reply.code(201).send({ component: await createComponent(ctx.db, ctx.clock, actorOf(p), b.key, { name: b.name, ...(b.position !== undefined ? { position: b.position } : {}) }) });
  });
  r.put('/status-components/:componentKey', { schema: { tags: ['notices'], summary: 'Rename or move a component (operator)', params: z.object({ componentKey }), body: z.object({ name: bilingual(100), position: z.number().int().min(0).max(10_000).optional() }) } }, async (req) => {
    const p = operatorWrite(principalOf(req));
    const b = req.body;
    return { component: await updateComponent(ctx.db, ctx.clock, actorOf(p), req.params.componentKey, { name: b.name, ...(b.position !== undefined ? { position: b.position } : {}) }) };
  });
  r.delete('/status-components/:componentKey', { schema: { tags: ['notices'], summary: 'Remove a component (operator)', params: z.object({ componentKey }) } }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    await deleteComponent(ctx.db, ctx.clock, actorOf(p), req.params.componentKey);
    return reply.code(204).send();
  });
  r.put('/incidents/:incidentId/components', { schema: { tags: ['notices'], summary: 'The components an incident affects (unknown keys refused)', params: incidentParams, body: componentKeys } }, async (req) => {
    const p = operatorWrite(principalOf(req));
    return { components: await setIncidentComponents(ctx.db, ctx.clock, actorOf(p), req.params.incidentId, req.body.components) };
  });
  r.put('/stops/:stopId/components', { schema: { tags: ['notices'], summary: 'The components a stop affects (unknown keys refused)', params: z.object({ stopId: uuid }), body: componentKeys } }, async (req) => {
    const p = operatorWrite(principalOf(req));
    return { components: await setStopComponents(ctx.db, ctx.clock, actorOf(p), req.params.stopId, req.body.components) };
  });

  // --- incident notices (R8.1, R8.2) ---
  r.post('/incidents/:incidentId/notices', {
    schema: { tags: ['notices'], summary: 'Post a notice (first, update, recovery, report): status page, milestone and e-mail to every affected customer\'s contacts in one transaction', params: incidentParams, body: noticeBody },
  }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    const result = await postIncidentNotice(ctx.db, ctx.clock, actorOf(p), req.params.incidentId, { stage: req.body.stage, fields: fieldsOf(req.body) }, noticeCtx());
    return reply.code(201).send(result);
  });
  r.post('/incidents/:incidentId/notices/preview', { schema: { tags: ['notices'], summary: 'What a notice would say (nothing is posted)', params: incidentParams, body: noticeBody } }, async (req) => {
    operatorWrite(principalOf(req));
    return { preview: await previewIncidentNotice(ctx.db, ctx.clock, req.params.incidentId, { stage: req.body.stage, fields: fieldsOf(req.body) }, noticeCtx()) };
  });
  r.get('/incidents/:incidentId/notices', { schema: { tags: ['notices'], summary: "An incident's notices with a per-recipient delivery summary (operator)", params: incidentParams } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    return { notices: await listIncidentNotices(ctx.db, ctx.clock, req.params.incidentId) };
  });
  r.get('/customers/:customerId/notices', { schema: { tags: ['notices'], summary: 'The notices addressed to a customer, with the delivery state of each of its recipients', params: customerParams } }, async (req) => {
    const p = principalOf(req);
    await customerReader(p, req.params.customerId);
    return { notices: await listCustomerNotices(ctx.db, req.params.customerId) };
  });
  r.get('/customers/:customerId/stops/:stopId/notice-proof', {
    schema: { tags: ['notices'], summary: 'Proof of notice of a stop to a customer (R7.2): what, when queued, when accepted by SMTP, Message-ID', params: z.object({ customerId: uuid, stopId: uuid }) },
  }, async (req) => {
    const p = principalOf(req);
    await customerReader(p, req.params.customerId);
    return { proof: await stopNoticeProof(ctx.db, req.params.stopId, req.params.customerId) };
  });

  // --- webhooks ---
  const webhookParams = z.object({ webhookId: uuid });
  r.get('/webhooks', { schema: { tags: ['notices'], summary: 'Registered webhooks (never their secrets)' } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator');
    return { webhooks: await listWebhooks(ctx.db) };
  });
  r.post('/webhooks', { schema: { tags: ['notices'], summary: 'Register a webhook for status posts; the signing secret is shown only in this answer', body: z.object({ url: z.string().max(2000), description: z.string().trim().max(500).optional() }) } }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    return reply.code(201).send(await createWebhook(ctx.db, ctx.clock, actorOf(p), req.body));
  });
  r.put('/webhooks/:webhookId/active', { schema: { tags: ['notices'], summary: 'Turn a webhook on or off', params: webhookParams, body: z.object({ active: z.boolean() }) } }, async (req) => {
    const p = operatorWrite(principalOf(req));
    return { webhook: await setWebhookActive(ctx.db, ctx.clock, actorOf(p), req.params.webhookId, req.body.active) };
  });
  r.delete('/webhooks/:webhookId', { schema: { tags: ['notices'], summary: 'Remove a webhook', params: webhookParams } }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    await deleteWebhook(ctx.db, ctx.clock, actorOf(p), req.params.webhookId);
    return reply.code(204).send();
  });
  r.get('/webhooks/:webhookId/deliveries', { schema: { tags: ['notices'], summary: "A webhook's deliveries and their state", params: webhookParams } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator');
    return { deliveries: await listWebhookDeliveries(ctx.db, req.params.webhookId) };
  });
}
