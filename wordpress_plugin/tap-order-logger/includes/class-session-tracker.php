<?php
/**
 * The visit timer and page counter behind `duration_session` and `pages_viewed`.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Keeps two cookies per visitor:
 *
 * - `visit_start_time`: Unix seconds of the visit's first front-end page (the original design's
 *   name), set when absent or unusable, expires one day after the visit started;
 * - `tap_pages_viewed`: front-end pages viewed in this visit.
 *
 * Both are reset at login and after the visitor's order has been logged. The cookies come from
 * the browser and can be anything: every value read is bounded, so an order always gets a
 * duration in [0, 86400] and a page count in [1, 100000].
 *
 * With the WP Consent API active they are read and set only with the visitor's consent to
 * statistics (TAP_Consent); without it an order gets the neutral 0 s and 1 page, and cookies
 * left from an earlier consent are deleted on the next page view.
 */
class TAP_Session_Tracker {

	const START_COOKIE = 'visit_start_time';
	const PAGES_COOKIE = 'tap_pages_viewed';
	const MAX_SECONDS  = 86400;
	const MAX_PAGES    = 100000;
	const LIFETIME     = 86400;

	/**
	 * Cookie access.
	 *
	 * @var TAP_Cookie_Jar
	 */
	private $cookies;

	/**
	 * Returns the current Unix time.
	 *
	 * @var callable
	 */
	private $clock;

	/**
	 * Consent check.
	 *
	 * @var TAP_Consent
	 */
	private $consent;

	/**
	 * Constructor.
	 *
	 * @param TAP_Cookie_Jar   $cookies Cookie access.
	 * @param callable|null    $clock   Returns the current Unix time (tests pass their own).
	 * @param TAP_Consent|null $consent Consent check.
	 */
	public function __construct( TAP_Cookie_Jar $cookies, $clock = null, $consent = null ) {
		$this->cookies = $cookies;
		$this->clock   = is_callable( $clock ) ? $clock : 'time';
		$this->consent = $consent instanceof TAP_Consent ? $consent : new TAP_Consent();
	}

	/**
	 * Hooks: count front-end page views once the query is known; reset at login.
	 */
	public function register() {
		add_action( 'template_redirect', array( $this, 'on_page_view' ), 20, 0 );
		add_action( 'wp_login', array( $this, 'reset' ), 10, 0 );
	}

	/**
	 * Counts this request as a page view of the visit, starting a visit when needed.
	 */
	public function on_page_view() {
		if ( ! $this->is_countable_page_view() ) {
			return;
		}
		if ( ! $this->consent->allows_visit_cookies() ) {
			// Consent withdrawn (or never given): drop what an earlier consent left behind.
			if ( null !== $this->cookies->get( self::START_COOKIE ) || null !== $this->cookies->get( self::PAGES_COOKIE ) ) {
				$this->reset();
			}
			return;
		}
		$now   = $this->now();
		$start = self::parse_int( $this->cookies->get( self::START_COOKIE ) );
		$pages = self::parse_int( $this->cookies->get( self::PAGES_COOKIE ) );

		if ( ! self::is_plausible_start( $start, $now ) ) {
			$start = $now;
			$pages = 0;
			$this->cookies->set( self::START_COOKIE, (string) $start, $start + self::LIFETIME );
		}
		$pages = min( self::MAX_PAGES, max( 0, (int) $pages ) + 1 );
		$this->cookies->set( self::PAGES_COOKIE, (string) $pages, $start + self::LIFETIME );
	}

	/**
	 * Ends the visit: the next front-end page starts a new one.
	 */
	public function reset() {
		$this->cookies->delete( self::START_COOKIE );
		$this->cookies->delete( self::PAGES_COOKIE );
	}

	/**
	 * The visit figures for an order placed now.
	 *
	 * @return array{duration_session: int, pages_viewed: int}
	 */
	public function snapshot() {
		if ( ! $this->consent->allows_visit_cookies() ) {
			return array(
				'duration_session' => 0,
				'pages_viewed'     => 1,
			);
		}
		return array(
			'duration_session' => self::duration_from( $this->cookies->get( self::START_COOKIE ), $this->now() ),
			'pages_viewed'     => self::pages_from( $this->cookies->get( self::PAGES_COOKIE ) ),
		);
	}

	/**
	 * Whether the current visit started at or before a moment (false when there is no visit).
	 *
	 * @param int $moment Unix time.
	 * @return bool
	 */
	public function visit_started_before( $moment ) {
		if ( ! $this->consent->allows_visit_cookies() ) {
			return false;
		}
		$start = self::parse_int( $this->cookies->get( self::START_COOKIE ) );
		return self::is_plausible_start( $start, $this->now() ) && $start <= (int) $moment;
	}

	/**
	 * Seconds since the visit started, bounded to [0, MAX_SECONDS]: a missing, non-numeric or
	 * future value gives 0; a value older than the cookie can live gives MAX_SECONDS.
	 *
	 * @param mixed $raw Cookie value.
	 * @param int   $now Unix time.
	 * @return int
	 */
	public static function duration_from( $raw, $now ) {
		$start = self::parse_int( $raw );
		if ( null === $start || $start > $now ) {
			return 0;
		}
		return min( self::MAX_SECONDS, $now - $start );
	}

	/**
	 * Pages viewed, bounded to [1, MAX_PAGES] (the order itself counts as one).
	 *
	 * @param mixed $raw Cookie value.
	 * @return int
	 */
	public static function pages_from( $raw ) {
		$pages = self::parse_int( $raw );
		return null === $pages ? 1 : max( 1, min( self::MAX_PAGES, $pages ) );
	}

	/**
	 * A cookie's non-negative integer, or null for anything else (text, signs, decimals,
	 * exponents, more than 12 digits).
	 *
	 * @param mixed $raw Value.
	 * @return int|null
	 */
	public static function parse_int( $raw ) {
		if ( ! is_string( $raw ) ) {
			return null;
		}
		$raw = trim( $raw );
		if ( 1 !== preg_match( '/^[0-9]{1,12}$/', $raw ) ) {
			return null;
		}
		return (int) $raw;
	}

	/**
	 * Whether a start time can belong to a live visit: not in the future and younger than the
	 * cookie's lifetime.
	 *
	 * @param int|null $start Unix time or null.
	 * @param int      $now   Unix time.
	 * @return bool
	 */
	public static function is_plausible_start( $start, $now ) {
		return null !== $start && $start <= $now && $now - $start <= self::LIFETIME;
	}

	/**
	 * Whether this request is a front-end page a person looks at: not admin, AJAX, REST,
	 * XML-RPC, cron or WP-CLI; a GET; not a feed, robots.txt, favicon, trackback, embed, 404,
	 * customizer preview, browser prefetch or a static asset. Filter: `tap_count_page_view`.
	 *
	 * @return bool
	 */
	public function is_countable_page_view() {
		$countable = ! $this->is_background_request()
			&& 'GET' === strtoupper( self::server( 'REQUEST_METHOD', 'GET' ) )
			&& ! $this->is_non_page_query()
			&& ! self::is_prefetch()
			&& ! self::looks_like_asset( self::server( 'REQUEST_URI', '' ) );
		return (bool) apply_filters( 'tap_count_page_view', $countable );
	}

	/**
	 * Whether a request URI names a static file rather than a page.
	 *
	 * @param string $uri Request URI.
	 * @return bool
	 */
	public static function looks_like_asset( $uri ) {
		$path = (string) strtok( (string) $uri, '?#' );
		return 1 === preg_match( '/\.(css|js|mjs|map|png|jpe?g|gif|webp|avif|svg|ico|woff2?|ttf|otf|eot|txt|xml|json|mp4|webm|mp3|pdf|zip)$/i', $path );
	}

	/**
	 * Whether the browser is only prefetching or prerendering the page.
	 *
	 * @return bool
	 */
	public static function is_prefetch() {
		$purpose = strtolower( self::server( 'HTTP_SEC_PURPOSE', '' ) . ' ' . self::server( 'HTTP_PURPOSE', '' ) . ' ' . self::server( 'HTTP_X_MOZ', '' ) );
		return false !== strpos( $purpose, 'prefetch' ) || false !== strpos( $purpose, 'prerender' );
	}

	/**
	 * Admin, AJAX, REST, XML-RPC, cron or CLI.
	 *
	 * @return bool
	 */
	private function is_background_request() {
		return is_admin()
			|| wp_doing_ajax()
			|| wp_doing_cron()
			|| ( defined( 'REST_REQUEST' ) && REST_REQUEST )
			|| ( defined( 'XMLRPC_REQUEST' ) && XMLRPC_REQUEST )
			|| ( defined( 'WP_CLI' ) && WP_CLI )
			|| isset( $_GET['wc-ajax'] ); // phpcs:ignore WordPress.Security.NonceVerification -- presence check only.
	}

	/**
	 * Feeds, robots.txt, favicon, trackbacks, embeds, 404s and customizer previews.
	 *
	 * @return bool
	 */
	private function is_non_page_query() {
		return is_feed()
			|| is_robots()
			|| ( function_exists( 'is_favicon' ) && is_favicon() )
			|| is_trackback()
			|| is_embed()
			|| is_404()
			|| ( function_exists( 'is_customize_preview' ) && is_customize_preview() );
	}

	/**
	 * A $_SERVER string.
	 *
	 * @param string $key     Key.
	 * @param string $default Default.
	 * @return string
	 */
	private static function server( $key, $default ) {
		return isset( $_SERVER[ $key ] ) && is_string( $_SERVER[ $key ] ) ? $_SERVER[ $key ] : $default; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput -- compared, never output.
	}

	/**
	 * Current Unix time (from the clock given to the constructor).
	 *
	 * @return int
	 */
	public function now() {
		return (int) call_user_func( $this->clock );
	}
}
