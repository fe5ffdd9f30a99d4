<?php
/**
 * Whether the visitor allows the visit cookies, through the WP Consent API when it is active.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * The visit cookies (`visit_start_time`, `tap_pages_viewed`) measure the visit that led to an
 * order, and the figures end up on that order with the buyer's e-mail: statistics about an
 * identifiable person, so they wait for consent in the `statistics` category.
 *
 * Facts from the WP Consent API (WordPress/wp-consent-level-api 2.0.1):
 *
 * - `wp_has_consent( string $category, ?string $requested_by = null ): bool` answers true when no
 *   consent management plugin sets a consent type, and for an opt-out region until the visitor
 *   refuses (inc/api-functions.php:176-197); the plugin loads it on `plugins_loaded` at
 *   priority 9 (wp-consent-api.php:150), before this plugin boots at 10.
 * - A plugin declares that it follows the API with the filter
 *   `wp_consent_api_registered_{plugin basename}` (inc/api-functions.php:369-376; readme.md:114-116).
 * - `wp_add_cookie_info( string $name, string $plugin_or_service, string $category,
 *   string $expires, string $cookie_function, string $collected_personal_data = '',
 *   bool $member_cookie = false, bool $administrator_cookie = false, string $type = 'HTTP',
 *   string $domain = '' )` describes a cookie for the cookie policy (inc/api-functions.php:392).
 *
 * Without the WP Consent API the cookies are set as before (filter `tap_visit_cookies_allowed`
 * to decide otherwise, e.g. from another consent plugin).
 */
class TAP_Consent {

	const CATEGORY = 'statistics';

	/**
	 * Hooks: declare compliance (a filter, harmless without the API) and describe the cookies.
	 */
	public function register() {
		add_filter( 'wp_consent_api_registered_' . self::plugin(), '__return_true' );
		add_action( 'init', array( $this, 'register_cookie_info' ) );
	}

	/**
	 * The plugin's basename, e.g. `tap-order-logger/tap-order-logger.php`.
	 *
	 * @return string
	 */
	public static function plugin() {
		return plugin_basename( TAP_ORDER_LOGGER_FILE );
	}

	/**
	 * Whether the WP Consent API is active.
	 *
	 * @return bool
	 */
	public function api_active() {
		return function_exists( 'wp_has_consent' );
	}

	/**
	 * Whether this request may read and set the visit cookies.
	 *
	 * @return bool
	 */
	public function allows_visit_cookies() {
		$allowed = $this->api_active() ? (bool) wp_has_consent( self::CATEGORY, self::plugin() ) : true;
		return (bool) apply_filters( 'tap_visit_cookies_allowed', $allowed );
	}

	/**
	 * `init`: the two cookies in the WP Consent API's cookie list, when it is active.
	 */
	public function register_cookie_info() {
		if ( ! function_exists( 'wp_add_cookie_info' ) ) {
			return;
		}
		$service = __( 'TAP Order Logger', 'tap-order-logger' );
		wp_add_cookie_info(
			TAP_Session_Tracker::START_COOKIE,
			$service,
			self::CATEGORY,
			__( '1 day', 'tap-order-logger' ),
			__( 'Stores when the visit started, to record how long the visit before an order lasted.', 'tap-order-logger' ),
			__( 'Time the visit started', 'tap-order-logger' ),
			false,
			false,
			'HTTP'
		);
		wp_add_cookie_info(
			TAP_Session_Tracker::PAGES_COOKIE,
			$service,
			self::CATEGORY,
			__( '1 day', 'tap-order-logger' ),
			__( 'Counts the pages viewed in the visit, to record them with an order.', 'tap-order-logger' ),
			__( 'Number of pages viewed', 'tap-order-logger' ),
			false,
			false,
			'HTTP'
		);
	}
}
