// Japanese and English strings of the commissioning page (replay/commissioning.html).
// Japanese is the default for a site whose language is ja, as in the viewer.
// Checklist reasons come from the server as a stable code plus arguments
// (twin_server/live/commissioning.py); each code has a formatter here, and the server's English
// reason is shown for a code this file does not know.

const s1 = (v) => (v == null ? '?' : Number(v).toFixed(v >= 10 ? 0 : 1));
const lv = (v) => (v == null ? '?' : Number(v).toPrecision(3).replace(/\.?0+$/, ''));
const levels = (a) => (a.min == null ? '' : ` (${lv(a.min)}..${lv(a.max)})`);
const dbm = (v) => `${Math.round(v)} dBm`;
const offJa = (a) => (a.offset_s == null ? '' : ` (実測のずれ ${a.offset_s >= 0 ? '+' : ''}${a.offset_s.toFixed(1)} 秒)`);
const offEn = (a) => (a.offset_s == null ? '' : ` (measured offset ${a.offset_s >= 0 ? '+' : ''}${a.offset_s.toFixed(1)} s)`);
const heardJa = (a) => (a.receivers || []).map((r) => `${r.receiver} ${dbm(r.rssi_dbm)} (最大 ${dbm(r.rssi_max_dbm)})`).join('、');
const heardEn = (a) => (a.receivers || []).map((r) => `${r.receiver} ${dbm(r.rssi_dbm)} (max ${dbm(r.rssi_max_dbm)})`).join('; ');

const gapsText = (a) => (a.gaps || []).map((g) => `${g.sensor} seq ${g.first_seq}..${g.last_seq} (${g.missing})`).join('; ');

export const TASKS = {
  ja: { tool_change: '工具交換', program_input: 'プログラム入力', material_setting: '材料設置' },
  en: { tool_change: 'tool change', program_input: 'program input', material_setting: 'material setting' },
};

export const STRINGS = {
  ja: {
    title: '据付チェック', language: 'English', start: 'チェック開始', startHint: 'このマシンの記録をリセットしてボタン確認をやり直す',
    pass: '合格', fail: '不合格', waiting: '待機中',
    started: '開始', lastSeen: '最終受信', never: '受信なし', agent: 'エージェント',
    sensors: 'センサー', beacons: 'ビーコン', sensor: 'センサー', value: '現在値', range: '最近の範囲',
    receiver: '受信機', beacon: 'ビーコン', rssi: 'RSSI', max: '最大', age: '経過',
    rejected: '不正なメッセージ', none: '―', secondsAgo: '秒前',
    live: 'ライブ', polling: '1秒ごとに更新', connecting: '接続中…', offline: '接続が切れました',
    signIn: 'サインイン', name: 'ユーザー名', password: 'パスワード', signInFailed: 'サインインできません',
    forbidden: 'この画面は技術者と監督者だけが使えます', loadFailed: 'データを読み込めません',
    check: {
      online: 'デバイス接続', clock: '時刻同期', data: 'データ受信', drivers: 'センサーの接続', delivery: 'データの欠落',
      live: (a) => `センサー ${a.sensor}`,
      light_on_off: (a) => `表示灯の点灯・消灯 (${a.sensor})`, pressure_excursion: (a) => `圧力変化 (${a.sensor})`,
      switch: (a) => `ボタン ${TASKS.ja[a.channel] || a.channel} (${a.sensor})`,
      beacon: (a) => `ビーコン ${a.worker} (${a.beacon})`, receivers: '受信機',
    },
    reason: {
      no_device: () => 'サイトファイルにデバイスがなく、データも届いていません',
      drivers_ok: () => '設定したセンサーはすべて開けました',
      nothing_missing: () => 'このデバイスのデータはすべてサーバーに保存され、欠落はありません',
      readings_missing: (a) => `${a.missing} 件のデータが未着です。エージェントが再送しています`,
      readings_lost: (a) => `${a.lost} 件のデータが失われました (エージェントの保存上限を超えました): ${gapsText(a)}`,
      driver_errors: (a) => `開けないセンサーがあります (再試行中): ${Object.entries(a.errors || {}).map(([k, v]) => `${k}: ${v}`).join('、')}`,
      no_status: (a) => `${a.device || 'デバイス'} からの状態メッセージがまだありません`,
      online: (a) => `${a.device} はオンライン`,
      offline: (a) => `${a.device} は ${s1(a.age_s)} 秒前にオフライン`,
      clock_unknown: (a) => `時刻同期の状態が不明です (chronyc tracking を確認)${offJa(a)}`,
      clock_synced: (a) => `NTP 同期済み${offJa(a)}`,
      clock_simulated: (a) => `シミュレーションの時刻 (${a.simulated}): 時刻同期の確認は対象外`,
      clock_not_synced: (a) => `時刻が同期していません (chronyc tracking を確認)${offJa(a)}`,
      clock_far_off: (a) => `${a.readings} 件のデータの時刻が受信時刻から ${a.offset_s >= 0 ? '+' : ''}${Math.round(a.offset_s)} 秒ずれています。保存はしますがライブ表示には使いません (時計を合わせてください: chronyc tracking)`,
      no_readings: () => 'チェック開始後のデータがまだありません',
      silent: (a) => `${s1(a.age_s)} 秒間データがありません`,
      fresh: (a) => `${s1(a.age_s)} 秒前に受信`,
      press_it: (a) => `「${TASKS.ja[a.channel] || a.channel}」ボタンを押してください`,
      pressed: (a) => `${a.presses} 回押されました (最後は ${s1(a.age_s)} 秒前)`,
      held: (a) => `${s1(a.age_s)} 秒前に押されたまま離されていません: スイッチの固着か配線の短絡`,
      no_level: () => '値がまだ届いていません',
      level_silent: (a) => `${s1(a.age_s)} 秒間値がありません: ADC と配線を確認`,
      level: (a) => `${lv(a.value)} ${a.unit} (${s1(a.age_s)} 秒前)`,
      on_and_off: (a) => `点灯と消灯を確認${levels(a)}`,
      seen_on: (a) => `点灯を確認、消灯してください${levels(a)}`,
      seen_off: (a) => `消灯を確認、点灯してください${levels(a)}`,
      no_change: (a) => `表示灯を消灯・点灯してください${levels(a)}。値が動くのに変わらなければ calibrate を実行`,
      excursion: (a) => `圧力変化を確認${levels(a)}`,
      clamp_it: (a) => `治具をクランプして外してください${levels(a)}`,
      heard: (a) => `受信: ${heardJa(a)}`,
      not_heard: (a) => `${a.worker} のビーコン ${a.beacon} を持ってゾーンを歩いてください`,
      no_receiver: () => 'このマシンの受信機がサイトファイルになく、RSSI も届いていません',
    },
  },
  en: {
    title: 'Commissioning', language: '日本語', start: 'Start commissioning', startHint: "Reset this machine's checklist and press each button again",
    pass: 'PASS', fail: 'FAIL', waiting: 'WAITING',
    started: 'Started', lastSeen: 'Last reading', never: 'nothing yet', agent: 'Agent',
    sensors: 'Sensors', beacons: 'Beacons', sensor: 'Sensor', value: 'Value', range: 'Recent range',
    receiver: 'Receiver', beacon: 'Beacon', rssi: 'RSSI', max: 'Max', age: 'Age',
    rejected: 'Rejected messages', none: '-', secondsAgo: 's ago',
    live: 'Live', polling: 'Updated every second', connecting: 'Connecting…', offline: 'Connection lost',
    signIn: 'Sign in', name: 'User name', password: 'Password', signInFailed: 'Cannot sign in',
    forbidden: 'Only engineers and supervisors can use this page', loadFailed: 'Cannot load the data',
    check: {
      online: 'Device online', clock: 'Clock sync', data: 'Data flowing', drivers: 'Sensors opened', delivery: 'Nothing missing',
      live: (a) => `Sensor ${a.sensor}`,
      light_on_off: (a) => `Stack light on and off (${a.sensor})`, pressure_excursion: (a) => `Pressure excursion (${a.sensor})`,
      switch: (a) => `Button ${TASKS.en[a.channel] || a.channel} (${a.sensor})`,
      beacon: (a) => `Beacon ${a.worker} (${a.beacon})`, receivers: 'Receivers',
    },
    reason: {
      no_device: () => 'the site file names no device for this machine and none has sent readings',
      drivers_ok: () => 'every configured sensor opened',
      nothing_missing: () => 'every reading of this device is in the journal, none lost',
      readings_missing: (a) => `${a.missing} reading(s) missing in the journal; the agent is sending them again`,
      readings_lost: (a) => `${a.lost} reading(s) lost for good (the agent's outbox no longer held them): ${gapsText(a)}`,
      driver_errors: (a) => `the agent cannot open these sensors (retrying): ${Object.entries(a.errors || {}).map(([k, v]) => `${k}: ${v}`).join('; ')}`,
      no_status: (a) => `no status message from ${a.device || 'the device'} yet: is the agent running?`,
      online: (a) => `${a.device} is online`,
      offline: (a) => `${a.device} went offline ${s1(a.age_s)} s ago`,
      clock_unknown: (a) => `the agent cannot tell whether its clock is synchronised (chronyc tracking)${offEn(a)}`,
      clock_synced: (a) => `NTP-synchronised${offEn(a)}`,
      clock_simulated: (a) => `simulated time (${a.simulated}): the clock check does not apply`,
      clock_not_synced: (a) => `clock not NTP-synchronised: check chrony (chronyc tracking)${offEn(a)}`,
      clock_far_off: (a) => `${a.readings} readings carry a device time ${a.offset_s >= 0 ? '+' : ''}${Math.round(a.offset_s)} s off their arrival: journalled but not shown live; set the device clock (chronyc tracking)`,
      no_readings: () => 'no reading since commissioning started',
      silent: (a) => `no reading for ${s1(a.age_s)} s`,
      fresh: (a) => `last reading ${s1(a.age_s)} s ago`,
      press_it: (a) => `press the ${TASKS.en[a.channel] || a.channel} button`,
      pressed: (a) => `pressed ${a.presses} time(s), last ${s1(a.age_s)} s ago`,
      held: (a) => `pressed ${s1(a.age_s)} s ago and never released: switch stuck or wire shorted`,
      no_level: () => 'no level received yet',
      level_silent: (a) => `no level for ${s1(a.age_s)} s: check the ADC and its wiring`,
      level: (a) => `${lv(a.value)} ${a.unit}, ${s1(a.age_s)} s ago`,
      on_and_off: (a) => `lamp seen on and off${levels(a)}`,
      seen_on: (a) => `lamp seen on, switch it off${levels(a)}`,
      seen_off: (a) => `lamp seen off, switch it on${levels(a)}`,
      no_change: (a) => `switch the lamp off and on${levels(a)}; if the levels move but this stays, run calibrate`,
      excursion: (a) => `pressure excursion seen${levels(a)}`,
      clamp_it: (a) => `clamp and release the jig${levels(a)}`,
      heard: (a) => `heard: ${heardEn(a)}`,
      not_heard: (a) => `walk through the zone with ${a.worker}'s beacon ${a.beacon}`,
      no_receiver: () => 'no receiver of this machine in the site file, and no RSSI from its device',
    },
  },
};

/** Translator for a language; unknown keys show the key itself (visible, not blank). */
export function commissioningText(lang) {
  const table = STRINGS[lang] ?? STRINGS.en;
  return (key) => table[key] ?? STRINGS.en[key] ?? key;
}

/** The label of a checklist line (what is checked). */
export function itemLabel(item, lang) {
  const table = (STRINGS[lang] ?? STRINGS.en).check;
  const label = table[item.check] ?? STRINGS.en.check[item.check];
  if (label == null) return item.key;
  return typeof label === 'function' ? label(item.args || {}) : label;
}

/** The reason of a checklist line in the language; the server's English text for an unknown code. */
export function itemReason(item, lang) {
  const fmt = (STRINGS[lang] ?? STRINGS.en).reason[item.code];
  if (fmt == null) return item.reason;
  try {
    return fmt(item.args || {});
  } catch {
    return item.reason;
  }
}
