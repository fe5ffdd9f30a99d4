<?php
/**
 * The few WordPress functions the plugin calls, reduced to what the tests need: a real hook
 * registry (priorities, accepted args), an options table in memory, and switches for the
 * conditional tags. Behaviour follows the WordPress functions of the same name.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

$GLOBALS['tap_wp_hooks']    = array();
$GLOBALS['tap_wp_actions']  = array();
$GLOBALS['tap_wp_options']  = array();
$GLOBALS['tap_wp_settings'] = array( 'errors' => array(), 'registered' => array(), 'pages' => array() );
$GLOBALS['tap_wp_env']      = array();
$GLOBALS['tap_wp_current']  = array(); // the hooks running now, innermost last
$GLOBALS['tap_wp_cron']     = array(); // WP-Cron events: list of array( timestamp, hook, args )
$GLOBALS['tap_wp_users']    = array(); // e-mail => user id
$GLOBALS['tap_wp_privacy']  = array( 'policy' => array(), 'wrong' => array() );

/** Puts the conditional tags and request flags back to "a front-end page view". */
function tap_test_reset_env() {
	$GLOBALS['tap_wp_env'] = array(
		'is_admin'             => false,
		'doing_ajax'           => false,
		'doing_cron'           => false,
		'is_feed'              => false,
		'is_robots'            => false,
		'is_favicon'           => false,
		'is_trackback'         => false,
		'is_embed'             => false,
		'is_404'               => false,
		'is_customize_preview' => false,
		'is_ssl'               => false,
		'wc_endpoint'          => null,
		'query_vars'           => array(),
	);
}
tap_test_reset_env();

function tap_test_reset_hooks() {
	$GLOBALS['tap_wp_hooks']   = array();
	$GLOBALS['tap_wp_actions'] = array();
	$GLOBALS['tap_wp_current'] = array();
}

// Hooks -------------------------------------------------------------------------------------

function add_filter( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
	$GLOBALS['tap_wp_hooks'][ $hook ][ (int) $priority ][] = array( $callback, (int) $accepted_args );
	return true;
}

function add_action( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
	return add_filter( $hook, $callback, $priority, $accepted_args );
}

function tap_test_callbacks( $hook ) {
	if ( empty( $GLOBALS['tap_wp_hooks'][ $hook ] ) ) {
		return array();
	}
	$by_priority = $GLOBALS['tap_wp_hooks'][ $hook ];
	ksort( $by_priority );
	$callbacks = array();
	foreach ( $by_priority as $priority => $entries ) {
		foreach ( $entries as $entry ) {
			$callbacks[] = array( 'callback' => $entry[0], 'args' => $entry[1], 'priority' => $priority );
		}
	}
	return $callbacks;
}

function apply_filters( $hook, $value, ...$args ) {
	foreach ( tap_test_callbacks( $hook ) as $entry ) {
		$value = call_user_func_array( $entry['callback'], array_slice( array_merge( array( $value ), $args ), 0, max( 1, $entry['args'] ) ) );
	}
	return $value;
}

function do_action( $hook, ...$args ) {
	$GLOBALS['tap_wp_actions'][ $hook ] = ( $GLOBALS['tap_wp_actions'][ $hook ] ?? 0 ) + 1;
	$GLOBALS['tap_wp_current'][]        = $hook;
	try {
		foreach ( tap_test_callbacks( $hook ) as $entry ) {
			call_user_func_array( $entry['callback'], array_slice( $args, 0, $entry['args'] ) );
		}
	} finally {
		array_pop( $GLOBALS['tap_wp_current'] );
	}
}

/** As WordPress: the arguments come as one array (Action Scheduler and wp-cron.php call this). */
function do_action_ref_array( $hook, $args ) {
	do_action( $hook, ...array_values( (array) $args ) );
}

function doing_action( $hook = null ) {
	return null === $hook ? ! empty( $GLOBALS['tap_wp_current'] ) : in_array( $hook, $GLOBALS['tap_wp_current'], true );
}

function did_action( $hook ) {
	return $GLOBALS['tap_wp_actions'][ $hook ] ?? 0;
}

function has_filter( $hook, $callback = false ) {
	foreach ( tap_test_callbacks( $hook ) as $entry ) {
		if ( false === $callback || $entry['callback'] == $callback ) {
			return $entry['priority'];
		}
	}
	return false;
}

function has_action( $hook, $callback = false ) {
	return has_filter( $hook, $callback );
}

function register_activation_hook( $file, $callback ) {
	add_action( 'activate_' . plugin_basename( $file ), $callback );
}

function __return_false() {
	return false;
}

function __return_true() {
	return true;
}

// Options -----------------------------------------------------------------------------------

function get_option( $name, $default = false ) {
	return array_key_exists( $name, $GLOBALS['tap_wp_options'] ) ? $GLOBALS['tap_wp_options'][ $name ] : $default;
}

function add_option( $name, $value = '', $deprecated = '', $autoload = null ) {
	if ( array_key_exists( $name, $GLOBALS['tap_wp_options'] ) ) {
		return false;
	}
	$GLOBALS['tap_wp_options'][ $name ] = $value;
	return true;
}

function update_option( $name, $value, $autoload = null ) {
	$GLOBALS['tap_wp_options'][ $name ] = $value;
	return true;
}

function delete_option( $name ) {
	$existed = array_key_exists( $name, $GLOBALS['tap_wp_options'] );
	unset( $GLOBALS['tap_wp_options'][ $name ] );
	return $existed;
}

function delete_site_option( $name ) {
	return delete_option( $name );
}

function is_multisite() {
	return false;
}

// Request state and conditional tags --------------------------------------------------------

function is_admin() { return $GLOBALS['tap_wp_env']['is_admin']; }
function wp_doing_ajax() { return $GLOBALS['tap_wp_env']['doing_ajax']; }
function wp_doing_cron() { return $GLOBALS['tap_wp_env']['doing_cron']; }
function is_feed() { return $GLOBALS['tap_wp_env']['is_feed']; }
function is_robots() { return $GLOBALS['tap_wp_env']['is_robots']; }
function is_favicon() { return $GLOBALS['tap_wp_env']['is_favicon']; }
function is_trackback() { return $GLOBALS['tap_wp_env']['is_trackback']; }
function is_embed() { return $GLOBALS['tap_wp_env']['is_embed']; }
function is_404() { return $GLOBALS['tap_wp_env']['is_404']; }
function is_customize_preview() { return $GLOBALS['tap_wp_env']['is_customize_preview']; }
function is_ssl() { return $GLOBALS['tap_wp_env']['is_ssl']; }

function get_query_var( $name, $default = '' ) {
	return $GLOBALS['tap_wp_env']['query_vars'][ $name ] ?? $default;
}

function is_wc_endpoint_url( $endpoint = false ) {
	$current = $GLOBALS['tap_wp_env']['wc_endpoint'];
	return false === $endpoint ? null !== $current : $current === $endpoint;
}

// Formatting, paths, time -------------------------------------------------------------------

function wp_json_encode( $value, $flags = 0, $depth = 512 ) {
	return json_encode( $value, $flags, $depth );
}

function absint( $value ) {
	return abs( (int) $value );
}

function wp_unslash( $value ) {
	return is_string( $value ) ? stripslashes( $value ) : $value;
}

function wp_timezone() {
	$name = get_option( 'timezone_string', '' );
	return new DateTimeZone( $name ? $name : 'UTC' );
}

function wp_upload_dir( $time = null, $create_dir = true, $refresh_cache = false ) {
	$base = WP_CONTENT_DIR . '/uploads';
	$url  = content_url() . '/uploads';
	return array( 'path' => $base, 'url' => $url, 'subdir' => '', 'basedir' => $base, 'baseurl' => $url, 'error' => false );
}

/** As WordPress: WP_CONTENT_URL, which wp_plugin_directory_constants() sets to siteurl + /wp-content. */
function content_url( $path = '' ) {
	$url = defined( 'WP_CONTENT_URL' ) ? WP_CONTENT_URL : rtrim( (string) get_option( 'siteurl', 'http://shop.test' ), '/' ) . '/wp-content';
	return '' === $path ? $url : $url . '/' . ltrim( $path, '/' );
}

function wp_parse_url( $url, $component = -1 ) {
	return parse_url( $url, $component );
}

function plugin_basename( $file ) {
	return basename( dirname( $file ) ) . '/' . basename( $file );
}

function load_plugin_textdomain( $domain, $deprecated = false, $path = false ) {
	return true;
}

function __( $text, $domain = 'default' ) { return $text; }
function wp_kses_post( $text ) { return (string) $text; }
function esc_html__( $text, $domain = 'default' ) { return $text; }
function esc_html( $text ) { return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' ); }
function esc_attr( $text ) { return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' ); }
function esc_url( $url ) { return (string) $url; }
function admin_url( $path = '' ) { return 'http://shop.test/wp-admin/' . ltrim( $path, '/' ); }
function current_user_can( $capability ) { return true; }

// Terms -------------------------------------------------------------------------------------

class WP_Error {
	public $code;
	public function __construct( $code = '', $message = '' ) { $this->code = $code; }
}

function is_wp_error( $thing ) {
	return $thing instanceof WP_Error;
}

/** Terms by id: array( id => name ), names stored HTML-escaped as WordPress stores them. */
$GLOBALS['tap_wp_terms'] = array();

function get_term( $term_id, $taxonomy = '' ) {
	if ( ! isset( $GLOBALS['tap_wp_terms'][ $term_id ] ) ) {
		return null;
	}
	return (object) array( 'term_id' => $term_id, 'name' => $GLOBALS['tap_wp_terms'][ $term_id ], 'taxonomy' => $taxonomy );
}

// Settings API ------------------------------------------------------------------------------

function register_setting( $group, $name, $args = array() ) {
	$GLOBALS['tap_wp_settings']['registered'][ $name ] = $args;
}
function add_settings_section( $id, $title, $callback, $page ) {}
function add_settings_field( $id, $title, $callback, $page, $section = 'default', $args = array() ) {}
function add_options_page( $page_title, $menu_title, $capability, $slug, $callback = '' ) {
	$GLOBALS['tap_wp_settings']['pages'][ $slug ] = $capability;
	return 'settings_page_' . $slug;
}
function add_settings_error( $setting, $code, $message, $type = 'error' ) {
	$GLOBALS['tap_wp_settings']['errors'][] = compact( 'setting', 'code', 'message', 'type' );
}

// WP-Cron -----------------------------------------------------------------------------------

/**
 * As wp-includes/cron.php: an identical event (hook and args) already queued is refused with
 * false. (WordPress only looks ten minutes around the new event; the tests never need more.)
 */
function wp_schedule_single_event( $timestamp, $hook, $args = array(), $wp_error = false ) {
	if ( ! is_numeric( $timestamp ) || $timestamp <= 0 ) {
		return false;
	}
	if ( false !== wp_next_scheduled( $hook, $args ) ) {
		return false;
	}
	$GLOBALS['tap_wp_cron'][] = array( 'timestamp' => (int) $timestamp, 'hook' => $hook, 'args' => $args );
	return true;
}

function wp_next_scheduled( $hook, $args = array() ) {
	foreach ( $GLOBALS['tap_wp_cron'] as $event ) {
		if ( $event['hook'] === $hook && $event['args'] === $args ) {
			return $event['timestamp'];
		}
	}
	return false;
}

function wp_unschedule_hook( $hook, $wp_error = false ) {
	$before                  = count( $GLOBALS['tap_wp_cron'] );
	$GLOBALS['tap_wp_cron'] = array_values( array_filter( $GLOBALS['tap_wp_cron'], static function ( $event ) use ( $hook ) {
		return $event['hook'] !== $hook;
	} ) );
	return $before - count( $GLOBALS['tap_wp_cron'] );
}

/** Runs the events due at $now as wp-cron.php does: unschedule, then do_action_ref_array(). */
function tap_test_run_cron( $now ) {
	$ran = 0;
	foreach ( $GLOBALS['tap_wp_cron'] as $i => $event ) {
		if ( $event['timestamp'] <= $now ) {
			unset( $GLOBALS['tap_wp_cron'][ $i ] );
			do_action_ref_array( $event['hook'], $event['args'] );
			++$ran;
		}
	}
	$GLOBALS['tap_wp_cron'] = array_values( $GLOBALS['tap_wp_cron'] );
	return $ran;
}

// Users and privacy -------------------------------------------------------------------------

function get_user_by( $field, $value ) {
	if ( 'email' !== $field || ! isset( $GLOBALS['tap_wp_users'][ $value ] ) ) {
		return false;
	}
	return (object) array( 'ID' => $GLOBALS['tap_wp_users'][ $value ], 'user_email' => $value );
}

/** As wp-admin/includes/plugin.php: only in wp-admin, on admin_init or later. */
function wp_add_privacy_policy_content( $plugin_name, $policy_text ) {
	if ( ! is_admin() || ( ! doing_action( 'admin_init' ) && ! did_action( 'admin_init' ) ) ) {
		$GLOBALS['tap_wp_privacy']['wrong'][] = $plugin_name;
		return;
	}
	if ( empty( $plugin_name ) || empty( $policy_text ) ) {
		return;
	}
	$GLOBALS['tap_wp_privacy']['policy'][] = array( 'plugin_name' => $plugin_name, 'policy_text' => $policy_text );
}
