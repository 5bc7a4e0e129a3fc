import type { NavItem } from './layout.js';
import type { PageContext } from './shell.js';

/**
 * Menu entries of the pages added beside portal.ts and console.ts (terms, notices, reports,
 * breaches), kept here so those files only gain one spread each.
 */
export function portalMoreNav(pc: PageContext): NavItem[] {
  const { t } = pc;
  return [
    { href: '/portal/terms', label: t('利用規約・お知らせ', 'Terms and notices') },
    { href: '/portal/notices', label: t('障害通知', 'Incident notices') },
    { href: '/portal/reports', label: t('月次報告', 'Monthly reports') },
    { href: '/portal/breaches', label: t('個人データ漏えい等', 'Personal-data breaches') },
  ];
}

export function consoleMoreNav(pc: PageContext): NavItem[] {
  const { t } = pc;
  return [
    { href: '/console/terms', label: t('利用規約・お知らせ', 'Terms and notices') },
    { href: '/console/consultations', label: t('協議', 'Consultations') },
    { href: '/console/reports', label: t('SLA・賠償責任報告', 'SLA and liability reports') },
    { href: '/console/breaches', label: t('個人データ漏えい等', 'Personal-data breaches') },
  ];
}
