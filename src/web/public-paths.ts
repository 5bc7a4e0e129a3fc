/**
 * Public, cached, read-only pages: the status page and the stylesheet. The gateway's per-request
 * work (Japan-only, admission, session lookup, IDS) is skipped for them — see decision 0022: the
 * status page is information about the Service, not the Service (R4.1), and during an incident it
 * must stay reachable and cheap for everyone, including customers' staff travelling abroad.
 */
export function isPublicCachedPath(path: string): boolean {
  return path === '/status' || path.startsWith('/assets/');
}
