/** Users of hokan read Japanese first; every human-facing message carries both languages. */
export interface Bilingual {
  ja: string;
  en: string;
}

export type Locale = 'ja' | 'en';

export function pick(text: Bilingual, locale: Locale): string {
  return text[locale];
}

export function bi(ja: string, en: string): Bilingual {
  return { ja, en };
}
