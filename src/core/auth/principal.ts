import type { Actor } from '../audit/audit-log.js';
import { errors } from '../errors.js';

export const OPERATOR_ROLES = ['admin', 'operator', 'billing', 'support'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];
export const CUSTOMER_ROLES = ['customer_admin', 'member'] as const;
export type CustomerRole = (typeof CUSTOMER_ROLES)[number];

/** Whoever a request speaks for, after authentication. */
export type Principal =
  | { kind: 'operator'; userId: string; loginId: string; displayName: string; roles: OperatorRole[] }
  | { kind: 'customer_user'; userId: string; loginId: string; displayName: string; customerId: string; role: CustomerRole }
  | { kind: 'api_token'; tokenId: string; customerId: string; name: string };

export function actorOf(p: Principal): Actor {
  switch (p.kind) {
    case 'operator':
      return { kind: 'operator', id: p.userId, label: `${p.loginId} (${p.roles.join(',')})` };
    case 'customer_user':
      return { kind: 'customer_user', id: p.userId, label: `${p.loginId} (${p.role})` };
    case 'api_token':
      return { kind: 'api_token', id: p.tokenId, label: `token ${p.name}` };
  }
}

export function hasOperatorRole(p: Principal, ...roles: OperatorRole[]): boolean {
  return p.kind === 'operator' && p.roles.some((r) => roles.includes(r));
}

export function requireOperatorRole(p: Principal, ...roles: OperatorRole[]): Extract<Principal, { kind: 'operator' }> {
  if (p.kind === 'operator' && p.roles.some((r) => roles.includes(r))) return p;
  throw errors.forbidden(`requires provider role ${roles.join(' or ')}`, `事業者の${roles.join('または')}権限が必要です`);
}

/** Customer users and tokens see only their own customer; operators see all. */
export function canAccessCustomer(p: Principal, customerId: string): boolean {
  return p.kind === 'operator' || p.customerId === customerId;
}

export function isCustomerAdminOf(p: Principal, customerId: string): boolean {
  return p.kind === 'customer_user' && p.role === 'customer_admin' && p.customerId === customerId;
}

/** R14.1: the fee is shown to the customer's admins and the provider's billing role only. */
export function canSeeFee(p: Principal, customerId: string): boolean {
  return hasOperatorRole(p, 'billing') || isCustomerAdminOf(p, customerId);
}
