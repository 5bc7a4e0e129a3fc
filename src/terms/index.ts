/** The terms domain's service functions (R1.1–R2.2), for routes, the CLI and the web pages. */
export { parseTermsDocument, renderArticle, renderParagraph, renderTermsDocument, articleTitle, TermsParseError, type TermsDocument, type TermsArticle, type TermsParagraph, type TermsItem, type EditionEntry } from './parser.js';
export { importTermsVersion, publishTermsVersion, listTermsVersions, getTermsVersion, diffTermsVersions, diffDocuments, type TermsVersionSummary, type TermsVersionView, type TermsDiff, type ArticleDiff } from './versions.js';
export { createNotice, updateNotice, deleteNotice, publishNotice, getNotice, listNotices, noticesForCustomer, type NoticeView, type NoticeInput } from './notices.js';
export { governingText, type GoverningAnswer, type GoverningSource } from './precedence.js';
export { notificationRecordsFor, type NotificationRecord, type ChangeKind } from './notifications.js';
export { openConsultation, addConsultationMessage, closeConsultation, listConsultations, findConsultation, type ConsultationView } from './consultations.js';
export { NAMED_TOPICS, parseTopic, topicLabel } from './topics.js';
export { diffLines, diffChars, type LineChange, type TextSpan } from './diff.js';
