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
    shift: 'シフト', language: 'English', loading: '読み込み中…', loadFailed: 'データを読み込めません',
    min: '分', lane: 'レーン', break: '休憩', sideBySide: '実績と並べて再生',
    signIn: 'サインイン', signOut: 'サインアウト', userName: 'ユーザー名', password: 'パスワード',
    signInWrong: 'ユーザー名またはパスワードが違います', signInBlocked: '失敗が多すぎます。しばらくしてから再試行してください',
    signInMissing: 'ユーザー名とパスワードを入力してください', signInFailed: 'サインインできません (サーバーに接続できません)',
    signingIn: 'サインイン中…', seconds: '秒', signedInAs: 'サインイン中', forbidden: 'この画面を見る権限がありません',
    onlyOwnPage: '自分のページだけを表示できます',
    myReplay: '自分のリプレイ', myTasks: '自分の作業', chooseSite: '工場を選んでください', noSites: 'このサーバーにはまだ工場のデータがありません',
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
  },
};

/** Translator for a language; unknown keys show the key itself (visible, not blank). */
export function translator(lang) {
  const table = STRINGS[lang] ?? STRINGS.en;
  return (key) => table[key] ?? STRINGS.en[key] ?? key;
}

/** Machine display name in the language (the site's name_ja for Japanese). */
export function machineName(machine, lang) {
  return lang === 'ja' ? machine.name_ja || machine.name || machine.id : machine.name || machine.id;
}
