// Japanese and English UI strings. Japanese is the default for a site whose language is ja.

export const STRINGS = {
  ja: {
    title: '作業リプレイ',
    play: '再生', pause: '一時停止',
    prevChange: '前の段取り', nextChange: '次の段取り',
    speed: '速度',
    overview: '全体', camera: 'カメラ',
    running: '稼働中', stopped: '停止中', unknown: '不明',
    jig_change: '治具交換', tool_change: '工具交換', program_input: 'プログラム入力', material_setting: '材料設置',
    none: '―', away: '離席',
    notes: 'メモ', addNote: 'この時刻にメモ', notePlaceholder: 'メモを入力', noNotes: 'メモはありません',
    delete: '削除', target: '対象',
    ideal: '理想の一日', idealOn: '理想の一日 (編集中)', gained: '機械の稼働が早まる時間',
    breakRun: '休憩中の稼働', real: '実績', idealLane: '理想',
    earlier: '早く', later: '遅く', shorter: '短く', longer: '長く', reset: '元に戻す',
    selectTask: '理想レーンの作業をタップして選択', selected: '選択中',
    worker: '作業者', workerView: '作業者ビュー', backToReplay: 'リプレイへ',
    myTimeline: '自分の作業タイムライン', duration: '所要時間', median: '中央値', best: '最速',
    vsMedian: '中央値との差', saved: '以前の日より短縮', total: '段取り合計', noEarlier: '比較対象なし',
    perTask: '作業ごと', count: '回数', day: '日付', task: '作業', machine: '機械', start: '開始',
    live: 'ライブ', liveUnavailable: 'ライブ利用不可', liveOn: 'ライブ表示中', liveConnecting: '接続中…',
    shift: 'シフト', language: 'English（英語）', loading: '読み込み中…', loadFailed: 'データを読み込めません',
    min: '分', lane: 'レーン', break: '休憩', sideBySide: '実績と並べて再生',
    signIn: 'サインイン', signOut: 'サインアウト', userName: 'ユーザー名', password: 'パスワード',
    signInWrong: 'ユーザー名またはパスワードが違います', signInBlocked: '失敗が多すぎます。しばらくしてから再試行してください',
    signInMissing: 'ユーザー名とパスワードを入力してください', signInFailed: 'サインインできません (サーバーに接続できません)',
    signingIn: 'サインイン中…', seconds: '秒', signedInAs: 'サインイン中', forbidden: 'この画面を見る権限がありません',
    onlyOwnPage: '自分のページだけを表示できます',
    myReplay: '自分のリプレイ', myTasks: '自分の作業', chooseSite: '工場を選んでください', noSites: 'このサーバーにはまだ工場のデータがありません',
    kpiUtil: '稼働率', kpiChangeovers: '段取り', kpiAttendedIdle: '在席待機', kpiLongestStop: '最長停止',
    kpiRunning: '稼働時間', times: '回', summary: 'シフト集計', close: '閉じる', kpiTrend: '推移',
    kpiPerMachine: '機械ごと', kpiPerWorker: '作業者ごと', ownMedian: '自分の中央値', thisShift: 'このシフト',
    perTaskMedian: '1回の中央値', kpiUnavailable: '集計を読み込めません', kpiNone: 'なし', kpiJump: 'タップでその時刻へ',
    skipIdle: '待ち時間を飛ばす', zoomIn: '拡大', zoomOut: '縮小', zoomFit: '全体表示', panLeft: '前へ', panRight: '後へ',
    legend: '凡例', lowConfidence: '位置が不確か', note: 'メモ', confidence: '確からしさ', zone: '場所',
    state: '状態', shortcuts: 'ショートカット', shortcutsHelp: 'スペース: 再生/停止 · ←→: 10秒 (Shift: 1分) · J/K: 前/次の段取り · S: 待ち時間を飛ばす · [ ]: 速度',
    accessLog: 'アクセス記録', fillingIn: 'このシフトは記録中です: {t} までのデータ', liveEnded: 'ライブ: シフトは {t} に終了しました',
    speedX: '{n}倍', gainReasons: '理由', idealConflict: '作業者の重なりを解消',
    reasonShorter: '{task} ({t}) を {n} 短縮: 後の作業が早まる', reasonLonger: '{task} ({t}) を {n} 延長: 後の作業が遅れる',
    reasonMoved: '{task} を {from} から {to} へ移動',
    reasonBreak: '{task} は{brk} ({from}–{to}) に重なるため {to} まで待つ: {n}',
    reasonWorker: '{task} は {worker} が {machine} の作業中のため {to} まで待つ: {n}',
    reasonBreakRun: '休憩中の稼働 {from} → {to}: {n}', reasonNet: '差し引き: {n}', reasonNone: '変更なし',
    lunch: '昼休み', 'morning break': '午前の休憩', 'afternoon break': '午後の休憩',
    accessIntro: '作業者のデータを誰がいつ見たかの記録です (稼働データは機微な情報です)。', everyone: '全員',
    allDays: 'すべての日', csvExport: 'CSV 出力', accWhen: '日時', accWhat: '見た内容', accStatus: '結果', accRole: '役割',
    accCount: '{n} 件', accNoAuth: 'このサーバーはサインインなしで動いています: アクセス記録はありません (serve --auth で有効)',
    accReplay: 'リプレイ (全員の位置と作業)', accWorker: '作業者の作業タイムライン', accMine: '作業者本人のリプレイ',
    accNotes: 'メモ', accKpis: 'シフト集計', accAudit: 'アクセス記録', accAnalysis: '解析結果', accReadings: 'センサー値',
    accLive: 'ライブ表示', accCommissioning: '設置チェック',
    role_supervisor: '監督者', role_worker: '作業者', role_engineer: '技術者', role_integrator: '連携', role_admin: '管理者',
  },
  en: {
    title: 'Shift replay',
    play: 'Play', pause: 'Pause',
    prevChange: 'Prev changeover', nextChange: 'Next changeover',
    speed: 'Speed',
    overview: 'Overview', camera: 'Camera',
    running: 'Running', stopped: 'Stopped', unknown: 'Unknown',
    jig_change: 'Jig change', tool_change: 'Tool change', program_input: 'Program input',
    material_setting: 'Material setting',
    none: '-', away: 'Away',
    notes: 'Notes', addNote: 'Note at this moment', notePlaceholder: 'Type a note', noNotes: 'No notes yet',
    delete: 'Delete', target: 'About',
    ideal: 'Ideal day', idealOn: 'Ideal day (editing)', gained: 'Machine minutes gained',
    breakRun: 'Running during breaks', real: 'Recorded', idealLane: 'ideal',
    earlier: 'earlier', later: 'later', shorter: 'shorter', longer: 'longer', reset: 'Reset',
    selectTask: 'Tap a task on an ideal lane to edit it', selected: 'Selected',
    worker: 'Worker', workerView: 'Worker view', backToReplay: 'Back to replay',
    myTimeline: 'My task timeline', duration: 'Duration', median: 'My median', best: 'My best',
    vsMedian: 'vs median', saved: 'Saved vs earlier days', total: 'Changeover total', noEarlier: 'nothing earlier',
    perTask: 'Per task', count: 'Count', day: 'Day', task: 'Task', machine: 'Machine', start: 'Start',
    live: 'Live', liveUnavailable: 'Live unavailable', liveOn: 'Live', liveConnecting: 'Connecting…',
    shift: 'Shift', language: '日本語', loading: 'Loading…', loadFailed: 'Cannot load the data',
    min: 'min', lane: 'lane', break: 'Break', sideBySide: 'Replay beside the recording',
    signIn: 'Sign in', signOut: 'Sign out', userName: 'User name', password: 'Password',
    signInWrong: 'Wrong user name or password', signInBlocked: 'Too many failed sign-ins; try again later',
    signInMissing: 'Enter your user name and password', signInFailed: 'Cannot sign in (server unreachable)',
    signingIn: 'Signing in…', seconds: 's', signedInAs: 'Signed in', forbidden: 'You may not open this page',
    onlyOwnPage: 'You can open only your own page',
    myReplay: 'My replay', myTasks: 'My tasks', chooseSite: 'Choose a site', noSites: 'This server has no site data yet',
    kpiUtil: 'Utilisation', kpiChangeovers: 'Changeovers', kpiAttendedIdle: 'Attended idle', kpiLongestStop: 'Longest stop',
    kpiRunning: 'Running', times: '×', summary: 'Shift summary', close: 'Close', kpiTrend: 'Trend',
    kpiPerMachine: 'Per machine', kpiPerWorker: 'Per worker', ownMedian: 'Own median', thisShift: 'This shift',
    perTaskMedian: 'Median per task', kpiUnavailable: 'Cannot load the figures', kpiNone: 'none', kpiJump: 'Tap to jump there',
    skipIdle: 'Skip idle', zoomIn: 'Zoom in', zoomOut: 'Zoom out', zoomFit: 'Whole shift', panLeft: 'Earlier', panRight: 'Later',
    legend: 'Legend', lowConfidence: 'Location uncertain', note: 'Note', confidence: 'Confidence', zone: 'Where',
    state: 'State', shortcuts: 'Shortcuts', shortcutsHelp: 'Space: play/pause · ←→: 10 s (Shift: 1 min) · J/K: previous/next changeover · S: skip idle · [ ]: speed',
    accessLog: 'Access log', fillingIn: 'This shift is still being recorded: data up to {t}', liveEnded: 'Live: the shift ended at {t}',
    speedX: '{n}x', gainReasons: 'Why', idealConflict: 'worker overlap resolved',
    reasonShorter: '{task} ({t}) {n} shorter: later work moves earlier', reasonLonger: '{task} ({t}) {n} longer: later work moves later',
    reasonMoved: '{task} moved from {from} to {to}',
    reasonBreak: '{task} would fall in the {brk} ({from}–{to}), so it waits until {to}: {n}',
    reasonWorker: '{task} waits until {to}: {worker} is busy at {machine}: {n}',
    reasonBreakRun: 'running during breaks {from} → {to}: {n}', reasonNet: 'net: {n}', reasonNone: 'no change',
    lunch: 'lunch', 'morning break': 'morning break', 'afternoon break': 'afternoon break',
    accessIntro: 'Who looked at workers\' data, and when (operating rates are sensitive).', everyone: 'everyone',
    allDays: 'All days', csvExport: 'Export CSV', accWhen: 'When', accWhat: 'What', accStatus: 'Result', accRole: 'Role',
    accCount: '{n} entries', accNoAuth: 'This server runs without sign-in: there is no access log (start it with serve --auth)',
    accReplay: 'replay (everyone\'s positions and tasks)', accWorker: 'worker\'s task timeline', accMine: 'worker\'s own replay',
    accNotes: 'notes', accKpis: 'shift summary', accAudit: 'access log', accAnalysis: 'analysis', accReadings: 'sensor readings',
    accLive: 'live view', accCommissioning: 'commissioning',
    role_supervisor: 'supervisor', role_worker: 'worker', role_engineer: 'engineer', role_integrator: 'integrator', role_admin: 'admin',
  },
};

/**
 * Translator for a language; unknown keys show the key itself (visible, not blank).
 * `t(key, {name: value})` fills `{name}` placeholders.
 */
export function translator(lang) {
  const table = STRINGS[lang] ?? STRINGS.en;
  return (key, args) => {
    const text = table[key] ?? STRINGS.en[key] ?? key;
    return args ? text.replace(/\{(\w+)\}/g, (m, k) => (k in args ? String(args[k]) : m)) : text;
  };
}

/** Display name of a site, machine, worker or break in the language (`name_ja` for Japanese). */
export function displayName(thing, lang) {
  if (!thing) return '';
  return lang === 'ja' ? thing.name_ja || thing.name || thing.id || '' : thing.name || thing.id || '';
}

/** Machine display name in the language (the site's name_ja for Japanese). */
export function machineName(machine, lang) {
  return displayName(machine, lang);
}

/** Minutes in the language: `12.5分` / `1時間05分`, `12.5 min` / `1 h 05 min`. */
export function formatMinutesIn(min, lang = 'en') {
  const sign = min < 0 ? '-' : '';
  const m = Math.abs(min);
  const ja = lang === 'ja';
  if (m >= 60) {
    let h = Math.floor(m / 60);
    let rest = Math.round(m % 60);
    if (rest === 60) { h += 1; rest = 0; }
    const mm = String(rest).padStart(2, '0');
    return ja ? `${sign}${h}時間${mm}分` : `${sign}${h} h ${mm} min`;
  }
  return ja ? `${sign}${m.toFixed(1)}分` : `${sign}${m.toFixed(1)} min`;
}

/** Minutes for the KPI strip, short: `8.4分` / `86分`, `8.4 min` / `86 min` (no hours). */
export function formatMinutesShort(min, lang = 'en') {
  const v = Math.abs(min) < 10 ? min.toFixed(1) : String(Math.round(min));
  return lang === 'ja' ? `${v}分` : `${v} min`;
}

/** A shift day (`YYYY-MM-DD`) as people write it: `2023年2月8日(水)` / `Wed 8 Feb 2023`. */
export function formatDate(day, lang = 'en') {
  const [y, mo, d] = day.split('-').map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, 12));
  if (lang === 'ja') {
    const wd = new Intl.DateTimeFormat('ja-JP', { weekday: 'short', timeZone: 'UTC' }).format(date);
    return `${y}年${mo}月${d}日(${wd})`;
  }
  return new Intl.DateTimeFormat('en-GB', {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC',
  }).format(date).replace(',', '');
}

/** A date and time of epoch seconds in a zone, for logs: `2023/02/08 09:05:12` / `8 Feb 2023, 09:05:12`. */
export function formatDateTime(tS, timeZone, lang = 'en') {
  return new Intl.DateTimeFormat(lang === 'ja' ? 'ja-JP' : 'en-GB', {
    timeZone, year: 'numeric', month: lang === 'ja' ? '2-digit' : 'short', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(new Date(tS * 1000));
}

/** A speed button's text: `600倍` / `600x`. */
export function speedLabel(n, lang) {
  return lang === 'ja' ? `${n}倍` : `${n}x`;
}
